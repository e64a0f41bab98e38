'use strict';
// A small stand-in for RPG Maker MV and MZ: the globals and classes RmmvGan.js touches, with
// each engine's constructor shapes (MV windows take x, y, width, height; MZ windows take a
// Rectangle), cache layouts and command paths. Drawing is recorded, not rendered; images are
// "loaded" by reading the real PNG's size from the game folder, asynchronously as in the
// engines. Each engine is a fresh vm context, so the plugin's patches never leak between runs.

const fs = require('fs');
const path = require('path');
const vm = require('vm');

const PLUGIN_FILE = path.resolve(__dirname, '..', 'RmmvGan.js');

function pngSize(file) {
    const b = fs.readFileSync(file);
    if (b.toString('latin1', 1, 4) !== 'PNG') throw new Error(`${file} is not a PNG`);
    return {width: b.readUInt32BE(16), height: b.readUInt32BE(20)};
}

// XMLHttpRequest as a browser sends it: the page's Origin on every request, status 0 and
// onerror when the answer lacks the CORS header for that origin.
function browserXhr(origin) {
    const http = require('http');
    return function XMLHttpRequest() {
        const headers = {Origin: origin};
        let method, url;
        this.open = (m, u) => { method = m; url = new URL(u); };
        this.setRequestHeader = (k, v) => { headers[k] = v; };
        this.send = (body) => {
            const req = http.request({hostname: url.hostname, port: url.port, path: url.pathname, method, headers}, (res) => {
                let text = '';
                res.on('data', (d) => { text += d; });
                res.on('end', () => {
                    const allowed = res.headers['access-control-allow-origin'];
                    if (allowed !== origin && allowed !== '*') { this.status = 0; return this.onerror(); }
                    this.status = res.statusCode;
                    this.responseText = text;
                    this.onload();
                });
            });
            req.on('error', () => { this.status = 0; this.onerror(); });
            req.end(body === null ? undefined : body);
        };
    };
}

function makeEngine(kind, options = {}) {
    const MZ = kind === 'MZ';
    const gameDir = options.gameDir;
    const playtest = options.playtest !== false;
    // Node's modules as NW.js gives them; child_process records what the plugin spawns
    // (options.spawns, an array), and spawns it for real.
    const childProcess = require('child_process');
    const spawns = options.spawns || [];
    const gameRequire = (name) => name !== 'child_process' ? require(name) : Object.assign({}, childProcess, {
        spawn(command, args, opts) {
            const child = childProcess.spawn(command, args, opts);
            spawns.push({command, args, options: opts, child});
            return child;
        },
    });
    const g = {console, setTimeout, clearTimeout, setInterval, clearInterval, require: gameRequire,
        process: {mainModule: {filename: path.join(gameDir, 'index.html')}, env: process.env}};

    // RPG Maker's class style: a constructor that calls initialize, methods on the prototype.
    function cls(parent, methods) {
        const C = function() { this.initialize.apply(this, arguments); };
        C.prototype = Object.create(parent ? parent.prototype : Object.prototype);
        C.prototype.constructor = C;
        Object.assign(C.prototype, methods);
        return C;
    }

    if (options.browserOrigin) {  // a game served to a browser: no Node modules, XHR with an Origin
        g.require = undefined;
        g.process = undefined;
        g.location = {origin: options.browserOrigin};
        g.XMLHttpRequest = browserXhr(options.browserOrigin);
    }

    g.Utils = {
        RPGMAKER_NAME: kind,
        RPGMAKER_VERSION: MZ ? '1.8.0' : '1.6.2',
        isNwjs: () => !options.browserOrigin,
        isOptionValid: (name) => name === 'test' && playtest,
    };
    if (MZ) g.Utils.encodeURIComponent = encodeURIComponent;

    // The editor stores every parameter value as a string.
    const stored = {};
    for (const [k, v] of Object.entries(options.parameters || {})) stored[k] = String(v);
    g.PluginManager = {
        _parameters: {rmmvgan: stored},
        _commands: {},
        parameters(name) { return this._parameters[name.toLowerCase()] || {}; },
    };
    if (MZ) {
        g.PluginManager.registerCommand = function(pluginName, commandName, func) {
            this._commands[pluginName + ':' + commandName] = func;
        };
        g.PluginManager.callCommand = function(self, pluginName, commandName, args) {
            const func = this._commands[pluginName + ':' + commandName];
            if (typeof func === 'function') func.bind(self)(args);
        };
    }

    g.Rectangle = function(x, y, width, height) {
        this.x = x; this.y = y; this.width = width; this.height = height;
    };

    g.Graphics = {width: MZ ? 816 : 816, height: 624, boxWidth: MZ ? 808 : 816, boxHeight: MZ ? 616 : 624};

    const sounds = [];
    g.SoundManager = {
        playCursor: () => sounds.push('cursor'), playOk: () => sounds.push('ok'),
        playCancel: () => sounds.push('cancel'), playBuzzer: () => sounds.push('buzzer'),
    };

    g.Bitmap = cls(null, {
        initialize(width, height) {
            this.width = Math.max(width || 0, 1);
            this.height = Math.max(height || 0, 1);
            this.ops = [];
            this.url = '';
            this.textColor = '#ffffff';
            this.fontSize = 28;
            this.paintOpacity = 255;
            this._state = 'loaded';
        },
        isReady() { return this._state === 'loaded'; },  // as in both engines: an error is never ready
        isError() { return this._state === 'error'; },
        clear() { this.ops = []; },
        fillRect(x, y, w, h, color) { this.ops.push(['fillRect', x, y, w, h, color]); },
        gradientFillRect(x, y, w, h, c1, c2) { this.ops.push(['gradientFillRect', x, y, w, h, c1, c2]); },
        drawText(text, x, y, maxWidth, lineHeight, align) {
            this.ops.push(['drawText', String(text), x, y, maxWidth, align || 'left', this.textColor, this.fontSize, lineHeight]);
        },
        measureTextWidth(text) { return String(text).length * this.fontSize / 2; },  // 14 px a letter at 28
        blt(source, sx, sy, sw, sh, dx, dy, dw, dh) {
            if (!source.isReady()) throw new Error(`blt from a bitmap that is not loaded: ${source.url}`);
            this.ops.push(['blt', source.url, sx, sy, sw, sh, dx, dy, dw === undefined ? sw : dw, dh === undefined ? sh : dh]);
        },
        texts() { return this.ops.filter((o) => o[0] === 'drawText').map((o) => o[1]); },
    });
    g.Bitmap.load = function(url) {
        const b = new g.Bitmap();
        b.url = url;
        b._state = 'loading';
        setImmediate(() => {
            try {
                const size = pngSize(path.join(gameDir, decodeURIComponent(url)));
                b.width = size.width;
                b.height = size.height;
                b._state = 'loaded';
            } catch (e) {
                b._state = 'error';
            }
        });
        return b;
    };

    if (MZ) {
        g.ImageManager = {
            _cache: {}, _system: {},
            faceWidth: 144, faceHeight: 144,
            loadCharacter(filename) { return this.loadBitmap('img/characters/', filename); },
            loadFace(filename) { return this.loadBitmap('img/faces/', filename); },
            loadBitmap(folder, filename) {
                if (!filename) return new g.Bitmap();
                return this.loadBitmapFromUrl(folder + g.Utils.encodeURIComponent(filename) + '.png');
            },
            loadBitmapFromUrl(url) {
                const cache = url.includes('/system/') ? this._system : this._cache;
                if (!cache[url]) cache[url] = g.Bitmap.load(url);
                return cache[url];
            },
            isObjectCharacter(name) { return (name.match(/^[!$]+/) || [''])[0].includes('!'); },
            isBigCharacter(name) { return (name.match(/^[!$]+/) || [''])[0].includes('$'); },
        };
    } else {
        g.ImageManager = {
            _imageCache: {_items: {}},
            loadCharacter(filename, hue) { return this.loadBitmap('img/characters/', filename, hue, false); },
            loadFace(filename, hue) { return this.loadBitmap('img/faces/', filename, hue, true); },
            loadBitmap(folder, filename, hue) {
                if (!filename) return new g.Bitmap();
                return this.loadNormalBitmap(folder + encodeURIComponent(filename) + '.png', hue || 0);
            },
            loadNormalBitmap(url, hue) {
                const key = url + ':' + hue;
                let item = this._imageCache._items[key];
                if (!item) item = this._imageCache._items[key] = {bitmap: g.Bitmap.load(url), touch: Date.now(), key};
                return item.bitmap;
            },
            isObjectCharacter(name) { return (name.match(/^[!$]+/) || [''])[0].includes('!'); },
            isBigCharacter(name) { return (name.match(/^[!$]+/) || [''])[0].includes('$'); },
        };
    }

    if (MZ) g.ColorManager = {textColor: (n) => '#text' + n, normalColor() { return this.textColor(0); }};

    // ------------------------------------------------------------------ windows
    g.Window_Base = cls(null, {
        initialize(...args) {
            let x, y, w, h;
            if (MZ) {
                if (args.length !== 1 || !(args[0] instanceof g.Rectangle)) throw new TypeError('MZ windows take one Rectangle');
                ({x, y, width: w, height: h} = args[0]);
            } else {
                if (args.length !== 4 || args.some((v) => typeof v !== 'number' || isNaN(v))) {
                    throw new TypeError('MV windows take x, y, width, height: got ' + JSON.stringify(args));
                }
                [x, y, w, h] = args;
            }
            Object.assign(this, {x, y, width: w, height: h, active: false, visible: true, updates: 0});
            this.padding = MZ ? 12 : 18;
            this.contents = new g.Bitmap(this.contentsWidth(), this.contentsHeight());
        },
        lineHeight() { return 36; },
        contentsWidth() { return this.width - this.padding * 2; },
        contentsHeight() { return this.height - this.padding * 2; },
        drawText(text, x, y, maxWidth, align) { this.contents.drawText(text, x, y, maxWidth, this.lineHeight(), align); },
        changeTextColor(color) { this.contents.textColor = color; },
        changePaintOpacity(enabled) { this.contents.paintOpacity = enabled ? 255 : 160; },
        update() { this.updates++; },
        activate() { this.active = true; },
        deactivate() { this.active = false; },
    });
    if (MZ) {
        Object.assign(g.Window_Base.prototype, {
            itemHeight() { return this.lineHeight(); },
            fittingHeight(n) { return n * this.itemHeight() + 12 * 2; },
            resetTextColor() { this.changeTextColor(g.ColorManager.normalColor()); },
        });
    } else {
        Object.assign(g.Window_Base.prototype, {
            standardPadding() { return 18; },
            fittingHeight(n) { return n * this.lineHeight() + this.standardPadding() * 2; },
            textColor(n) { return '#text' + n; },
            normalColor() { return this.textColor(0); },
            resetTextColor() { this.changeTextColor(this.normalColor()); },
        });
    }

    g.Window_Selectable = cls(g.Window_Base, {
        initialize(...args) {
            g.Window_Base.prototype.initialize.apply(this, args);
            this._index = -1;
            this._handlers = {};
            this.deactivate();
        },
        maxItems() { return 0; },
        index() { return this._index; },
        select(index) { this._index = index; },
        setHandler(symbol, method) { this._handlers[symbol] = method; },
        isHandled(symbol) { return !!this._handlers[symbol]; },
        callHandler(symbol) { if (this.isHandled(symbol)) this._handlers[symbol](); },
        isCurrentItemEnabled() { return true; },
        processOk() {
            if (this.isCurrentItemEnabled()) {
                g.SoundManager.playOk();
                this.deactivate();
                this.callOkHandler();
            } else {
                g.SoundManager.playBuzzer();
            }
        },
        callOkHandler() { this.callHandler('ok'); },
        processCancel() { this.deactivate(); this.callHandler('cancel'); },
        cursorRight() {},
        cursorLeft() {},
        itemHeight() { return this.lineHeight() + (MZ ? 8 : 0); },
        itemRect(index) { return new g.Rectangle(0, index * this.itemHeight(), this.contentsWidth(), this.itemHeight()); },
        refresh() { this.contents.clear(); this.drawAllItems(); },
        drawAllItems() { for (let i = 0; i < this.maxItems(); i++) this.drawItem(i); },
        drawItem() {},
    });
    if (MZ) {
        g.Window_Selectable.prototype.itemLineRect = function(index) {
            const r = this.itemRect(index);
            return new g.Rectangle(r.x + 8, r.y + 4, r.width - 16, r.height - 8);
        };
    } else {
        g.Window_Selectable.prototype.itemRectForText = function(index) {
            const r = this.itemRect(index);
            return new g.Rectangle(r.x + 6, r.y, r.width - 12, r.height);
        };
    }

    const commandMethods = {
        maxItems() { return this._list.length; },
        clearCommandList() { this._list = []; },
        makeCommandList() {},
        addCommand(name, symbol, enabled = true, ext = null) { this._list.push({name, symbol, enabled, ext}); },
        commandName(i) { return this._list[i].name; },
        commandSymbol(i) { return this._list[i].symbol; },
        isCommandEnabled(i) { return this._list[i].enabled; },
        currentData() { return this._index >= 0 ? this._list[this._index] : null; },
        currentSymbol() { return this.currentData() ? this.currentData().symbol : null; },
        isCurrentItemEnabled() { return this.currentData() ? this.currentData().enabled : false; },
        callOkHandler() {
            const symbol = this.currentSymbol();
            if (this.isHandled(symbol)) this.callHandler(symbol);
            else if (this.isHandled('ok')) this.callHandler('ok');
            else this.activate();
        },
        drawItem(i) { this.drawText(this.commandName(i), 0, i * this.itemHeight(), this.contentsWidth(), 'left'); },
        // test helpers
        symbols() { return this._list.map((c) => c.symbol); },
        selectSymbol(symbol) { this.select(this._list.findIndex((c) => c.symbol === symbol)); },
    };
    if (MZ) {
        g.Window_Command = cls(g.Window_Selectable, Object.assign({}, commandMethods, {
            initialize(rect) {
                g.Window_Selectable.prototype.initialize.call(this, rect);
                this.refresh();
                this.select(0);
                this.activate();
            },
            refresh() {
                this.clearCommandList();
                this.makeCommandList();
                g.Window_Selectable.prototype.refresh.call(this);
            },
        }));
    } else {
        g.Window_Command = cls(g.Window_Selectable, Object.assign({}, commandMethods, {
            initialize(x, y) {
                this.clearCommandList();
                this.makeCommandList();
                g.Window_Selectable.prototype.initialize.call(this, x, y, this.windowWidth(), this.windowHeight());
                this.refresh();
                this.select(0);
                this.activate();
            },
            windowWidth() { return 240; },
            windowHeight() { return this.fittingHeight(this._list.length); },
            refresh() {
                this.clearCommandList();
                this.makeCommandList();
                this.contents = new g.Bitmap(this.contentsWidth(), this.contentsHeight());
                g.Window_Selectable.prototype.refresh.call(this);
            },
        }));
    }

    g.Window_MenuCommand = cls(g.Window_Command, {
        makeCommandList() {
            for (const s of ['item', 'skill', 'equip', 'status', 'formation']) this.addCommand(s, s, true);
            this.addOriginalCommands();
            for (const s of ['options', 'save', 'gameEnd']) this.addCommand(s, s, true);
        },
        addOriginalCommands() {},
    });

    // ------------------------------------------------------------------ scenes
    g.Scene_Base = cls(null, {
        initialize() { this._windows = []; this.started = false; },
        create() {},
        start() { this.started = true; },
        update() { for (const w of this._windows) w.update(); },
        addWindow(w) { this._windows.push(w); },
        popScene() { g.SceneManager.pop(); },
    });
    if (MZ) {
        g.Scene_Base.prototype.calcWindowHeight = function(numLines, selectable) {
            return selectable ? g.Window_Selectable.prototype.fittingHeight.call(g.Window_Selectable.prototype, numLines)
                : g.Window_Base.prototype.fittingHeight.call(g.Window_Base.prototype, numLines);
        };
    }
    g.Scene_MenuBase = cls(g.Scene_Base, {
        create() { g.Scene_Base.prototype.create.call(this); this.background = true; },
    });
    if (MZ) g.Scene_MenuBase.prototype.mainAreaTop = function() { return 52; };
    g.Scene_Map = cls(g.Scene_Base, {});
    g.Scene_Menu = cls(g.Scene_MenuBase, {
        create() { g.Scene_MenuBase.prototype.create.call(this); this.createCommandWindow(); },
        createCommandWindow() {
            const w = MZ ? new g.Window_MenuCommand(new g.Rectangle(0, 52, 240, 500)) : new g.Window_MenuCommand(0, 0);
            for (const s of ['item', 'skill', 'equip', 'status', 'formation', 'options', 'save', 'gameEnd']) w.setHandler(s, () => {});
            w.setHandler('cancel', this.popScene.bind(this));
            this._commandWindow = w;
            this.addWindow(w);
        },
    });
    g.SceneManager = {
        _scene: null, _nextScene: null, _stack: [],
        push(sceneClass) { this._stack.push(this._scene && this._scene.constructor); this.goto(sceneClass); },
        goto(sceneClass) { this._nextScene = sceneClass ? new sceneClass() : null; },
        pop() { this.goto(this._stack.pop() || g.Scene_Map); },
        prepareNextScene(...args) { this._nextScene.prepare(...args); },
        // One frame: a pending scene change, then the scene's update (as SceneManager.updateMain).
        frame() {
            if (this._nextScene) {
                this._scene = this._nextScene;
                this._nextScene = null;
                this._scene.create();
                this._scene.start();
            }
            if (this._scene) this._scene.update();
        },
    };

    // ------------------------------------------------------------------ game objects
    g.Game_Variables = cls(null, {
        initialize() { this._data = []; },
        value(id) { return this._data[id] || 0; },
        setValue(id, value) { if (id > 0) this._data[id] = typeof value === 'number' ? Math.floor(value) : value; },
    });
    g.Game_Switches = cls(null, {
        initialize() { this._data = []; },
        value(id) { return !!this._data[id]; },
        setValue(id, value) { if (id > 0) this._data[id] = !!value; },
    });
    g.Game_Message = cls(null, {
        initialize() { this.clear(); },
        clear() { this._texts = []; this._faceName = ''; this._faceIndex = 0; },
        add(text) { this._texts.push(text); },
        setFaceImage(faceName, faceIndex) { this._faceName = faceName; this._faceIndex = faceIndex; },
        faceName() { return this._faceName; },
        faceIndex() { return this._faceIndex; },
        hasText() { return this._texts.length > 0; },
        isBusy() { return this.hasText(); },
        allText() { return this._texts.join('\n'); },
    });
    g.Game_System = cls(null, {initialize() {}});
    g.Game_Temp = cls(null, {
        initialize() { this._isPlaytest = g.Utils.isOptionValid('test'); },
        isPlaytest() { return this._isPlaytest; },
    });
    g.Game_Party = cls(null, {initialize() {}, inBattle() { return false; }});
    g.Game_CharacterBase = cls(null, {
        initialize() { this._characterName = ''; this._characterIndex = 0; },
        setImage(name, index) { this._characterName = name; this._characterIndex = index; },
        characterName() { return this._characterName; },
        characterIndex() { return this._characterIndex; },
    });
    g.Game_Player = cls(g.Game_CharacterBase, {});
    g.Game_Event = cls(g.Game_CharacterBase, {
        initialize(mapId, eventId) {
            g.Game_CharacterBase.prototype.initialize.call(this);
            this._mapId = mapId;
            this._eventId = eventId;
            this._pageIndex = -1;
            this.refresh();
        },
        event() { return g.$dataMap.events[this._eventId]; },
        page() { return this.event().pages[this._pageIndex]; },
        findProperPageIndex() { return this.event().pages.length - 1; },  // every page's conditions hold here
        refresh() {
            const index = this.findProperPageIndex();
            if (index !== this._pageIndex) { this._pageIndex = index; this.setupPage(); }
        },
        setupPage() { this.setupPageSettings(); },
        setupPageSettings() { const im = this.page().image; this.setImage(im.characterName, im.characterIndex); },
        eventId() { return this._eventId; },
    });
    g.Game_Map = cls(null, {
        initialize() { this._mapId = 0; this._events = []; },
        setup(mapId) {
            this._mapId = mapId;
            this._events = [];
            for (const e of g.$dataMap.events) if (e) this._events[e.id] = new g.Game_Event(mapId, e.id);
        },
        mapId() { return this._mapId; },
        event(id) { return this._events[id]; },
    });
    g.Game_Interpreter = cls(null, {
        initialize() { this.clear(); },
        clear() {
            this._mapId = 0; this._eventId = 0; this._list = null; this._index = 0; this._waitMode = ''; this._params = [];
            this._indent = 0; this._branch = {};
        },
        setup(list, eventId) { this.clear(); this._mapId = g.$gameMap.mapId(); this._eventId = eventId || 0; this._list = list; },
        isRunning() { return !!this._list; },
        setWaitMode(mode) { this._waitMode = mode; },
        update() {
            while (this.isRunning()) {
                if (this.updateWaitMode()) break;
                if (!this.executeCommand()) break;
            }
        },
        updateWaitMode() {
            let waiting = false;
            if (this._waitMode === 'message') waiting = g.$gameMessage.isBusy();
            if (!waiting) this._waitMode = '';
            return waiting;
        },
        currentCommand() { return this._list[this._index]; },
        nextEventCode() { const c = this._list[this._index + 1]; return c ? c.code : 0; },
        executeCommand() {
            const command = this.currentCommand();
            if (!command) { this._list = null; return true; }
            this._params = command.parameters;
            this._indent = command.indent;
            const method = this['command' + command.code];
            if (typeof method === 'function' && !method.call(this, command.parameters)) return false;
            this._index++;
            return true;
        },
        character(param) {
            if (g.$gameParty.inBattle()) return null;
            if (param < 0) return g.$gamePlayer;
            if (this._mapId === g.$gameMap.mapId()) return g.$gameMap.event(param > 0 ? param : this._eventId);
            return null;
        },
        // Conditional Branch on a switch (the only condition used here), Else, Branch End.
        command111(params) {
            if (params[0] !== 0) throw new Error('the simulated engine branches on switches only');
            const result = g.$gameSwitches.value(params[1]) === (params[2] === 0);
            this._branch[this._indent] = result;
            if (!result) this.skipBranch();
            return true;
        },
        command411() {
            if (this._branch[this._indent] !== false) this.skipBranch();
            return true;
        },
        command412() { return true; },
        skipBranch() {
            while (this._list[this._index + 1].indent > this._indent) this._index++;
        },
        // Show Text, as both engines run it: face, then the following 401 lines.
        command101(params) {
            if (!g.$gameMessage.isBusy()) {
                g.$gameMessage.setFaceImage(params[0], params[1]);
                while (this.nextEventCode() === 401) {
                    this._index++;
                    g.$gameMessage.add(this.currentCommand().parameters[0]);
                }
                this._index++;
                this.setWaitMode('message');
            }
            return false;
        },
    });
    if (MZ) {
        g.Game_Interpreter.prototype.command357 = function(params) {
            g.PluginManager.callCommand(this, params[0], params[1], params[3]);
            return true;
        };
    } else {
        g.Game_Interpreter.prototype.command356 = function() {
            const args = this._params[0].split(' ');
            const command = args.shift();
            this.pluginCommand(command, args);
            return true;
        };
        g.Game_Interpreter.prototype.pluginCommand = function() {};
    }

    g.$dataMap = options.dataMap || {events: [null, {id: 1, pages: [{image: {characterName: 'Actor1', characterIndex: 2}}]},
        {id: 2, pages: [{image: {characterName: '', characterIndex: 0}}]}]};
    g.$gameVariables = new g.Game_Variables();
    g.$gameSwitches = new g.Game_Switches();
    g.$gameMessage = new g.Game_Message();
    g.$gameSystem = new g.Game_System();
    g.$gameTemp = new g.Game_Temp();
    g.$gameParty = new g.Game_Party();
    g.$gamePlayer = new g.Game_Player();
    g.$gameMap = new g.Game_Map();
    g.$gameMap.setup(1);

    const context = vm.createContext(g);
    vm.runInContext(fs.readFileSync(PLUGIN_FILE, 'utf8'), context, {filename: PLUGIN_FILE});
    context.sounds = sounds;
    return context;
}

// The plugin command as the editor stores it in an event list.
function pluginCommand(engine, mv, mz) {
    if (engine.Utils.RPGMAKER_NAME === 'MZ') {
        return {code: 357, indent: 0, parameters: ['RmmvGan', mz.command, mz.text || mz.command, mz.args || {}]};
    }
    return {code: 356, indent: 0, parameters: [mv]};
}

// Run an event on the map frame by frame, as Game_Map.update does, closing each message as a
// player would (after recording it), until the event ends.
async function runEvent(engine, list, eventId, {timeoutMs = 120000, onFrame} = {}) {  // generous: shared, loaded machines
    const interpreter = new engine.Game_Interpreter();
    interpreter.setup(list.concat([{code: 0, indent: 0, parameters: []}]), eventId);
    const messages = [];
    const end = Date.now() + timeoutMs;
    let frames = 0;
    while (interpreter.isRunning()) {
        if (Date.now() > end) throw new Error(`event still running after ${timeoutMs} ms (wait mode ${interpreter._waitMode})`);
        interpreter.update();
        frames++;
        if (onFrame) onFrame(interpreter, frames);
        if (engine.$gameMessage.isBusy()) {
            messages.push({text: engine.$gameMessage.allText(), faceName: engine.$gameMessage.faceName(),
                faceIndex: engine.$gameMessage.faceIndex()});
            engine.$gameMessage.clear();
        }
        await new Promise((resolve) => setTimeout(resolve, 15));
    }
    return {messages, frames};
}

// Scene frames until `done()` holds.
async function runFrames(engine, done, timeoutMs = 120000) {
    const end = Date.now() + timeoutMs;
    for (;;) {
        engine.SceneManager.frame();
        if (done()) return;
        if (Date.now() > end) throw new Error(`condition not met after ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 15));
    }
}

module.exports = {makeEngine, pluginCommand, runEvent, runFrames, pngSize, PLUGIN_FILE};
