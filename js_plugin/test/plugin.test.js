'use strict';
// RmmvGan.js in a simulated MV and MZ engine (engine.js), first alone, then against a real
// `rmmv-gan serve` (daemon.js).

const {describe, test, before, after} = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const {makeEngine, pluginCommand, runEvent, runFrames, pngSize, PLUGIN_FILE} = require('../testlib/engine');
const {startDaemon, makeGame, serveHasWatch} = require('../testlib/daemon');

const ENGINES = ['MV', 'MZ'];
const plain = (v) => JSON.parse(JSON.stringify(v));  // objects from the plugin's realm, compared by value

function tempGame() {
    return makeGame(fs.mkdtempSync(path.join(os.tmpdir(), 'rmmvgan-game-')));
}

// A port nothing listens on: bound, then released.
function closedPort() {
    return new Promise((resolve) => {
        const srv = net.createServer();
        srv.listen(0, '127.0.0.1', () => {
            const port = srv.address().port;
            srv.close(() => resolve(port));
        });
    });
}

// The value drawn right of an options row (the row named `label`).
function shownValue(window, label) {
    const drawn = window.contents.ops.filter((o) => o[0] === 'drawText');
    const row = drawn.find((o) => o[1] === label && o[5] === 'left');
    assert.ok(row, `no row ${label}: ${drawn.map((o) => o[1]).join('|')}`);
    const value = drawn.find((o) => o[3] === row[3] && o[5] === 'right');
    return value ? value[1] : null;
}

// A pack as GET /api/pack answers it: two archetypes with their own default strength.
const TWO_ARCHETYPES = {name: 'two', archetypes: [{name: 'knight', psi: 0.6, strength: 0.3}, {name: 'villain', psi: 0.7, strength: 0.8}],
    defaults: {archetype: 'knight', psi: 0.6, strength: 0.3}, limits: {psi: [-2, 2], seed: [0, 4294967295], strength: [0, 1]}};

// The Generate NPC scene with the request-file transport (no daemon asked), its windows made.
async function optionsScene(e) {
    e.SceneManager.push(e.RmmvGan.Scene_RmmvGan);
    await runFrames(e, () => e.SceneManager._scene instanceof e.RmmvGan.Scene_RmmvGan && e.SceneManager._scene._optionsWindow);
    return e.SceneManager._scene;
}

// The one request file the scene's Generate wrote, parsed.
function writtenRequest(game) {
    const dir = path.join(game, 'rmmv_gan', 'requests');
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
    assert.equal(files.length, 1, files.join(','));
    return JSON.parse(fs.readFileSync(path.join(dir, files[0]), 'utf8'));
}

function generateCommand(engine, mvArgs, mzArgs) {
    return pluginCommand(engine, 'RmmvGan generate ' + mvArgs,
        {command: 'generate', args: Object.assign({archetype: '', psi: '', strength: '', name: '', seed: '', event: 'this'}, mzArgs)});
}

test('the plugin is plain ES5 (MV runs it in an old NW.js)', () => {
    // Strip comments and string literals, then look for syntax newer than ES5.
    const code = fs.readFileSync(PLUGIN_FILE, 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/\/\/[^\n]*/g, '')
        .replace(/'(?:\\.|[^'\\\n])*'/g, "''")
        .replace(/"(?:\\.|[^"\\\n])*"/g, '""');
    for (const [what, re] of [['arrow function', /=>/], ['let', /\blet\s/], ['const', /\bconst\s/],
        ['class', /\bclass\s+\w/], ['template string', /`/], ['spread', /\.\.\.\w/], ['Promise', /\bPromise\b/]]) {
        assert.ok(!re.test(code), `the plugin uses ${what}`);
    }
});

for (const kind of ENGINES) {
    describe(`${kind}: without a daemon`, () => {
        let game;
        before(() => { game = tempGame(); });
        after(() => fs.rmSync(game, {recursive: true, force: true}));

        test('parameters are parsed from the editor\'s strings, with defaults', () => {
            const e = makeEngine(kind, {gameDir: game, parameters: {serverUrl: 'http://127.0.0.1:9999/', token: ' abc ',
                transport: 'files', defaultArchetype: 'hero', defaultPsi: '0.5', steps: '3', timeout: '20',
                characterVariable: '4', facesVariable: '5', placeholderFace: 'X', menuCommand: 'New NPC', menuTestPlayOnly: 'false'}});
            assert.equal(e.RmmvGan.engine, kind);
            assert.deepEqual(plain(e.RmmvGan.params), {serverUrl: 'http://127.0.0.1:9999', token: 'abc', transport: 'files',
                autoStart: true, daemonCommand: 'rmmv-gan', daemonIdleExit: 30,
                defaultArchetype: 'hero', defaultPsi: 0.5, steps: 3, timeout: 20, characterVariable: 4, facesVariable: 5,
                successSwitch: 0, placeholderFace: 'X', menuCommand: 'New NPC', menuTestPlayOnly: false});
            const d = makeEngine(kind, {gameDir: game, parameters: {autoStart: 'false', daemonCommand: '"C:\\My Tools\\rmmv-gan.exe" -v',
                daemonIdleExit: '0.5', successSwitch: '7'}});
            assert.deepEqual(plain(d.RmmvGan.params), {serverUrl: 'http://127.0.0.1:8765', token: '', transport: 'http',
                autoStart: false, daemonCommand: '"C:\\My Tools\\rmmv-gan.exe" -v', daemonIdleExit: 0.5,
                defaultArchetype: '', defaultPsi: null, steps: 0, timeout: 300, characterVariable: 0, facesVariable: 0,
                successSwitch: 7, placeholderFace: 'RmmvGan_New', menuCommand: 'Generate NPC', menuTestPlayOnly: true});
            assert.deepEqual(plain(d.RmmvGan.splitCommand(d.RmmvGan.params.daemonCommand)), ['C:\\My Tools\\rmmv-gan.exe', '-v']);
            assert.equal(d.RmmvGan.firstErrorLine('Usage: x\nError: No such option: --nope\n'), 'Error: No such option: --nope');
            assert.equal(d.RmmvGan.firstErrorLine('Traceback (most recent call last):\n  File "x"\nImportError: torch\n'), 'ImportError: torch');
        });

        test('generate arguments: positional, key=value, defaults and mistakes', () => {
            const e = makeEngine(kind, {gameDir: game});
            const parse = (s) => plain(e.RmmvGan.parseGenerateArgs(s ? s.split(' ') : []));
            assert.deepEqual(parse(''), {opts: {archetype: null, psi: null, strength: null, name: null, seed: null, event: 0}});
            assert.deepEqual(parse('hero 0.6 Ann event=3 seed=42'),
                {opts: {archetype: 'hero', psi: 0.6, strength: null, name: 'Ann', seed: 42, event: 3}});
            assert.deepEqual(parse('- -0.5 - event=this'), {opts: {archetype: null, psi: -0.5, strength: null, name: null, seed: null, event: 0}});
            assert.deepEqual(parse('name=Bo archetype=villain strength=0.3'),
                {opts: {archetype: 'villain', psi: null, strength: 0.3, name: 'Bo', seed: null, event: 0}});
            assert.match(parse('hero lots').error, /psi must be a number/);
            assert.match(parse('strength=most').error, /strength must be a number/);
            assert.match(parse('event=player').error, /event must be "this" or an event ID/);
            assert.match(parse('a 1 b c').error, /too many arguments/);
            assert.match(parse('colour=red').error, /unknown argument "colour"/);
        });

        test('plugin commands are registered and dispatched', async () => {
            const e = makeEngine(kind, {gameDir: game});
            if (kind === 'MZ') {
                assert.deepEqual(Object.keys(e.PluginManager._commands).sort(), ['RmmvGan:generate', 'RmmvGan:open', 'RmmvGan:preview']);
            }
            await runEvent(e, [pluginCommand(e, 'RmmvGan preview $Ann', {command: 'preview', args: {name: '$Ann'}})], 1);
            assert.ok(e.SceneManager._nextScene instanceof e.RmmvGan.Scene_RmmvGan);
            assert.equal(e.SceneManager._nextScene._previewName, 'Ann');
            e.SceneManager._nextScene = null;
            await runEvent(e, [pluginCommand(e, 'RmmvGan open', {command: 'open', args: {}})], 1);
            assert.ok(e.SceneManager._nextScene instanceof e.RmmvGan.Scene_RmmvGan);
            if (kind === 'MV') {  // a mistyped MV command tells the player instead of doing nothing
                const {messages} = await runEvent(e, [pluginCommand(e, 'RmmvGan generat hero')], 1);
                assert.match(messages[0].text, /unknown command "generat"/);
            }
        });

        test('the main menu has "Generate NPC" in test play only, and it opens the scene', () => {
            const e = makeEngine(kind, {gameDir: game});
            e.SceneManager.goto(e.Scene_Menu);
            e.SceneManager.frame();
            const menu = e.SceneManager._scene._commandWindow;
            assert.equal(menu.symbols().indexOf('rmmvGan'), menu.symbols().indexOf('formation') + 1);
            assert.equal(menu._list.find((c) => c.symbol === 'rmmvGan').name, 'Generate NPC');
            menu.selectSymbol('rmmvGan');
            menu.processOk();
            assert.ok(e.SceneManager._nextScene instanceof e.RmmvGan.Scene_RmmvGan);

            const released = makeEngine(kind, {gameDir: game, playtest: false});
            released.SceneManager.goto(released.Scene_Menu);
            released.SceneManager.frame();
            assert.ok(!released.SceneManager._scene._commandWindow.symbols().includes('rmmvGan'));
            const always = makeEngine(kind, {gameDir: game, playtest: false, parameters: {menuTestPlayOnly: 'false'}});
            always.SceneManager.goto(always.Scene_Menu);
            always.SceneManager.frame();
            assert.ok(always.SceneManager._scene._commandWindow.symbols().includes('rmmvGan'));
        });

        test('no daemon running, not in test play: nothing is spawned, the player is told how to start it, the switch is OFF', async () => {
            const port = await closedPort();
            const spawns = [];
            const e = makeEngine(kind, {gameDir: game, playtest: false, spawns,
                parameters: {serverUrl: `http://127.0.0.1:${port}`, successSwitch: '5'}});
            e.$gameSwitches.setValue(5, true);  // as a previous success left it
            const {messages} = await runEvent(e, [generateCommand(e, 'hero', {archetype: 'hero'})], 1);
            assert.equal(spawns.length, 0);
            assert.equal(e.$gameSwitches.value(5), false);
            assert.equal(messages.length, 1);
            const text = messages[0].text.replace(/\n/g, ' ');
            assert.match(text, new RegExp(`not running at http://127\\.0\\.0\\.1:${port}`));
            assert.ok(text.includes(`rmmv-gan serve --project "${game.replace(/\\/g, '\\\\')}"`), text);
            assert.equal(e.$gameMap.event(1).characterName(), 'Actor1');  // unchanged

            // the scene builds its windows and says the same in its status window, in red
            e.SceneManager.push(e.RmmvGan.Scene_RmmvGan);
            const status = () => e.SceneManager._scene && e.SceneManager._scene._statusWindow;
            await runFrames(e, () => status() && /not running/.test(status().text()));
            const scene = e.SceneManager._scene;
            assert.deepEqual(scene._optionsWindow.symbols(), ['archetype', 'strength', 'psi', 'seed', 'generate', 'cancel']);
            assert.ok(scene._previewWindow instanceof e.RmmvGan.Window_RmmvGanPreview);
            assert.match(status().contents.texts().join(' '), /rmmv-gan serve --project/);
            assert.ok(status().contents.ops.some((o) => o[0] === 'drawText' && o[6] === '#text18'));
            // Close leaves the scene
            scene._optionsWindow.selectSymbol('cancel');
            scene._optionsWindow.processOk();
            assert.equal(e.SceneManager._nextScene.constructor, e.Scene_Map);
        });

        test('in a browser with no daemon, the status window shows the whole message, the command and URL included', async () => {
            const port = await closedPort();
            const e = makeEngine(kind, {gameDir: game, browserOrigin: 'http://localhost:8000',
                parameters: {serverUrl: `http://127.0.0.1:${port}`}});
            e.SceneManager.push(e.RmmvGan.Scene_RmmvGan);
            const status = () => e.SceneManager._scene && e.SceneManager._scene._statusWindow;
            await runFrames(e, () => status() && status()._isError);
            const text = status().text();
            assert.match(text, /not running at .*--origin http:\/\/localhost:8000$/);
            const drawn = status().contents.ops.filter((o) => o[0] === 'drawText');
            assert.equal(drawn.map((o) => o[1]).join('').replace(/ /g, ''), text.replace(/ /g, ''), 'every word is drawn');
            for (const [, line, , y, width, , , fontSize, lineHeight] of drawn) {
                assert.ok(y + lineHeight <= status().contents.height, `"${line}" is below the window`);
                assert.ok(line.length * fontSize / 2 <= width, `"${line}" is wider than the window`);
            }
        });

        test('a long word (a path) is cut to fit a line', () => {
            const e = makeEngine(kind, {gameDir: game});
            const w = new e.RmmvGan.Window_RmmvGanStatus(0, 0, 200, 400);
            w.setStatus('Start: C:/Users/someone/Documents/RPG Maker MV/A very long game name/');
            const lines = w.contents.texts();
            assert.equal(lines.join('').replace(/ /g, ''), 'Start:C:/Users/someone/Documents/RPGMakerMV/Averylonggamename/');
            assert.ok(lines.every((l) => l.length * 14 <= w.contents.width), lines.join('|'));
        });

        test('the scene\'s strength starts at the archetype\'s default and steps by 0.1 within 0..1', async () => {
            const e = makeEngine(kind, {gameDir: game, parameters: {transport: 'files'}});
            const scene = await optionsScene(e);
            const options = scene._optionsWindow;
            assert.equal(shownValue(options, 'Strength'), '(archetype\'s)', 'no pack: the daemon\'s default');
            scene.applyPack(TWO_ARCHETYPES);
            assert.equal(shownValue(options, 'Strength'), '0.30');
            options.selectSymbol('strength');
            options.cursorRight();
            assert.equal(shownValue(options, 'Strength'), '0.40');
            for (let i = 0; i < 8; i++) options.cursorRight();
            assert.equal(shownValue(options, 'Strength'), '1.00', 'no higher than 1');
            for (let i = 0; i < 12; i++) options.cursorLeft();
            assert.equal(shownValue(options, 'Strength'), '0.00', 'no lower than 0');
            const drawn = options.contents.ops.filter((o) => o[0] === 'drawText');
            assert.ok(drawn.every((o) => o[3] + o[8] <= options.contents.height), 'every row fits in the window');
        });

        test('the scene\'s strength goes into the request, and none is sent when it is the daemon\'s to choose', async () => {
            const own = tempGame();
            const e = makeEngine(kind, {gameDir: own, parameters: {transport: 'files'}});
            const scene = await optionsScene(e);
            scene.applyPack(TWO_ARCHETYPES);
            scene._optionsWindow.selectSymbol('strength');
            scene._optionsWindow.cursorLeft();
            scene.onGenerate();
            assert.deepEqual([writtenRequest(own).archetype, writtenRequest(own).strength], ['knight', 0.2]);
            scene.onClose();  // takes the request file back
            const unset = await optionsScene(makeEngine(kind, {gameDir: own, parameters: {transport: 'files'}}));  // no pack
            unset.onGenerate();
            assert.ok(!('strength' in writtenRequest(own)), JSON.stringify(writtenRequest(own)));
            unset.onClose();
            fs.rmSync(own, {recursive: true, force: true});
        });

        test('changing the archetype in the scene resets the strength to that archetype\'s default', async () => {
            const e = makeEngine(kind, {gameDir: game, parameters: {transport: 'files'}});
            const scene = await optionsScene(e);
            scene.applyPack(TWO_ARCHETYPES);
            const options = scene._optionsWindow;
            options.selectSymbol('strength');
            options.cursorRight();
            options.selectSymbol('archetype');
            options.cursorRight();
            assert.deepEqual([shownValue(options, 'Archetype'), shownValue(options, 'Strength')], ['villain', '0.80']);
            options.selectSymbol('strength');
            options.cursorLeft();
            options.selectSymbol('archetype');
            options.cursorLeft();
            assert.deepEqual([shownValue(options, 'Archetype'), shownValue(options, 'Strength')], ['knight', '0.30']);
        });

        test('the image caches forget a name, so a new file shows at once', async () => {
            const e = makeEngine(kind, {gameDir: game});
            const before = e.ImageManager.loadCharacter('$Late');  // not there yet: an error bitmap is cached
            await runFrames(e, () => before.isError());
            assert.equal(e.ImageManager.loadCharacter('$Late'), before);
            fs.copyFileSync(path.join(__dirname, '..', '..', 'sample_project', 'img', 'faces', 'RmmvGan_New.png'),
                path.join(game, 'img', 'characters', '$Late.png'));
            assert.equal(e.RmmvGan.clearImageCache('img/characters/', '$Late'), 1);
            const after = e.ImageManager.loadCharacter('$Late');
            await runFrames(e, () => after.isReady());
            assert.ok(!after.isError() && after.width === 576);
        });
    });
}

function sampleStranger() {
    const sample = path.join(__dirname, '..', '..', 'sample_project');
    const $plugins = (() => { const c = {}; require('vm').runInNewContext(fs.readFileSync(path.join(sample, 'js', 'plugins.js'), 'utf8'), c); return c.$plugins; })();
    const ours = $plugins.find((p) => p.name === 'RmmvGan');
    const dataMap = JSON.parse(fs.readFileSync(path.join(sample, 'data', 'Map001.json'), 'utf8'));
    const stranger = dataMap.events.find((ev) => ev && ev.name === 'Stranger');
    return {parameters: ours.parameters, dataMap, stranger};
}

test('MV: the sample project\'s Stranger says so, with no new face, when no character was made', async () => {
    const game = tempGame();
    const {parameters, dataMap, stranger} = sampleStranger();
    const e = makeEngine('MV', {gameDir: game, dataMap, parameters: Object.assign({}, parameters,
        {serverUrl: `http://127.0.0.1:${await closedPort()}`, autoStart: 'false'})});
    e.$gameSwitches.setValue(Number(parameters.successSwitch), true);  // an earlier success
    const {messages} = await runEvent(e, stranger.pages[0].list.slice(0, -1), stranger.id);
    assert.deepEqual(messages.map((m) => m.faceName), ['', '', '']);
    assert.match(messages[1].text, /not running/);
    assert.match(messages[2].text, /Nobody new came/);
    fs.rmSync(game, {recursive: true, force: true});
});

// The installed `rmmv-gan` on PATH, as a user's Playtest finds it (null: why it cannot run).
function missingRmmvGan() {
    try {
        require('child_process').execFileSync('rmmv-gan', ['serve', '--help'], {stdio: 'pipe'});
        return null;
    } catch (e) {
        const why = `the rmmv-gan command is not installed here (${e.code || e.message})`;
        if (process.env.CI) throw new Error(why);
        return why;
    }
}

describe('test play starts the daemon itself (a real spawn of the installed rmmv-gan)', () => {
    const skip = missingRmmvGan() || false;
    let game;
    const spawns = [];
    before(() => { game = tempGame(); });
    after(() => {
        for (const s of spawns) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill();
        fs.rmSync(game, {recursive: true, force: true});
    });
    const parameters = {steps: '1', daemonIdleExit: '0.1', successSwitch: '1'};  // idle exit after 6 s
    const serverJson = () => path.join(game, 'rmmv_gan', 'server.json');

    // An event's generate with the map scene running, recording what its progress window said.
    async function generateOnMap(e, name) {
        e.SceneManager.goto(e.Scene_Map);
        const said = [];
        const {messages} = await runEvent(e, [generateCommand(e, `- - ${name}`, {name})], 1, {onFrame: () => {
            e.SceneManager.frame();
            const w = e.SceneManager._scene._rmmvGanProgressWindow;
            if (w && w.visible && said[said.length - 1] !== w.text()) said.push(w.text());
        }});
        const w = e.SceneManager._scene._rmmvGanProgressWindow;
        return {messages, said, windowLeftOpen: !!(w && w.visible)};
    }

    test('two Playtest windows with no daemon: one spawn, both get their character, with progress shown', {skip}, async () => {
        const a = makeEngine('MV', {gameDir: game, spawns, parameters});
        const b = makeEngine('MZ', {gameDir: game, spawns, parameters});
        const [ra, rb] = await Promise.all([generateOnMap(a, 'SpawnA'), generateOnMap(b, 'SpawnB')]);
        assert.deepEqual([ra.messages, rb.messages], [[], []]);
        assert.equal(spawns.length, 1, 'one daemon per game');
        assert.equal(spawns[0].command, 'rmmv-gan');
        assert.deepEqual(plain(spawns[0].args), ['serve', '--project', game, '--port', '0', '--idle-exit', '0.1']);
        for (const name of ['SpawnA', 'SpawnB']) {
            assert.deepEqual(pngSize(path.join(game, 'img', 'characters', `$${name}.png`)), {width: 144, height: 192});
            assert.ok(fs.existsSync(path.join(game, 'img', 'faces', `${name}.png`)));
        }
        assert.equal(a.$gameSwitches.value(1), true);
        assert.ok(ra.said.includes('Making a character: starting rmmv-gan...'), ra.said.join(' | '));
        assert.ok(ra.said.some((t) => /^Making a character: \S+ \d+%$/.test(t)), ra.said.join(' | '));
        assert.ok(!ra.windowLeftOpen && !rb.windowLeftOpen, 'the progress window closes with the wait');
    });

    test('a second generate reuses the running daemon', {skip}, async () => {
        const first = JSON.parse(fs.readFileSync(serverJson(), 'utf8'));
        const c = makeEngine('MV', {gameDir: game, spawns, parameters});
        const {messages} = await generateOnMap(c, 'Reused');
        assert.deepEqual(messages, []);
        assert.equal(spawns.length, 1);
        assert.equal(spawns[0].child.exitCode, null, 'the first daemon still runs');
        assert.deepEqual(JSON.parse(fs.readFileSync(serverJson(), 'utf8')), first);
        assert.ok(fs.existsSync(path.join(game, 'img', 'faces', 'Reused.png')));
    });

    test('the daemon stops by itself when idle, and the next Playtest starts a new one', {skip}, async () => {
        const child = spawns[0].child;
        const end = Date.now() + 60000;
        while (child.exitCode === null && Date.now() < end) {  // polled: the detached child holds no event loop
            await new Promise((resolve) => setTimeout(resolve, 200));
        }
        assert.equal(child.exitCode, 0);
        assert.ok(!fs.existsSync(serverJson()), 'server.json no longer points at it');
        const d = makeEngine('MV', {gameDir: game, spawns, parameters});
        const {messages} = await generateOnMap(d, 'Again');
        assert.deepEqual(messages, []);
        assert.equal(spawns.length, 2);
        assert.ok(fs.existsSync(path.join(game, 'img', 'faces', 'Again.png')));
    });

    test('a command that is not found: the player is told which, and the event goes on', async () => {
        const mine = [];
        const other = tempGame();
        const e = makeEngine('MV', {gameDir: other, spawns: mine, parameters: {daemonCommand: 'rmmv-gan-not-installed-here',
            serverUrl: `http://127.0.0.1:${await closedPort()}`, successSwitch: '1'}});
        const started = Date.now();
        const {messages} = await runEvent(e, [generateCommand(e, '', {})], 1);
        assert.ok(Date.now() - started < 10000, 'no hang');
        assert.equal(mine.length, 1);
        assert.match(messages[0].text.replace(/\n/g, ' '),
            /cannot start the daemon: the command "rmmv-gan-not-installed-here" was not found\..*"Daemon command"/);
        assert.equal(e.$gameSwitches.value(1), false);
        assert.ok(!fs.existsSync(path.join(other, 'rmmv_gan', 'daemon-start.lock')), 'the start lock is released');
        fs.rmSync(other, {recursive: true, force: true});
    });

    test('a daemon that stops as it starts: the player reads its error line', {skip}, async () => {
        const notAGame = fs.mkdtempSync(path.join(os.tmpdir(), 'rmmvgan-notgame-'));
        const e = makeEngine('MZ', {gameDir: notAGame, spawns, parameters});
        const {messages} = await runEvent(e, [generateCommand(e, '', {})], 1);
        assert.match(messages[0].text.replace(/\n/g, ' '),
            /the daemon stopped as it started \(exit code 1\): Error: .*not an RPG Maker MV or MZ project/);
        fs.rmSync(notAGame, {recursive: true, force: true});
    });
});

describe('with a real daemon', () => {
    let daemon;
    let watch = false;
    before(async () => {
        watch = serveHasWatch();
        daemon = await startDaemon({watch});
    });
    after(async () => { if (daemon) await daemon.stop(); });

    test('MV: the sample project\'s Stranger runs as its plugins.js sets it up', async () => {
        const {parameters, dataMap, stranger} = sampleStranger();
        const e = makeEngine('MV', {gameDir: daemon.game, dataMap, parameters: Object.assign({}, parameters, {steps: '1'})});
        const {messages} = await runEvent(e, stranger.pages[0].list.slice(0, -1), stranger.id);
        const made = e.$gameVariables.value(2);
        assert.match(made, /^default_\d+$/);
        assert.equal(e.$gameVariables.value(1), '$' + made);
        assert.equal(e.$gameMap.event(stranger.id).characterName(), '$' + made);
        assert.deepEqual(messages.map((m) => [m.faceName, m.faceIndex]), [['', 0], [made, 0], [made, 1]]);
        assert.ok(fs.existsSync(path.join(daemon.game, 'img', 'faces', made + '.png')));
    });

    test('MZ in a browser: XHR with the token from the parameters, and the origin the daemon must allow', async () => {
        const allowed = daemon.url;  // the daemon's own origin is allowed; --origin adds others
        const e = makeEngine('MZ', {gameDir: daemon.game, browserOrigin: allowed,
            parameters: {serverUrl: daemon.url, token: daemon.token, steps: '1'}});
        assert.equal(e.RmmvGan.daemonConfig().from, 'parameters');
        const {messages} = await runEvent(e, [generateCommand(e, '', {name: 'WebAnn'})], 1);
        assert.deepEqual(messages, []);
        assert.equal(e.$gameMap.event(1).characterName(), '$WebAnn');
        // A running daemon that refuses this page's origin is told apart from no daemon at all.
        const foreign = makeEngine('MZ', {gameDir: daemon.game, browserOrigin: 'http://localhost:8000',
            parameters: {serverUrl: daemon.url, token: daemon.token}});
        const r = await runEvent(foreign, [generateCommand(foreign, '', {})], 1);
        const said = r.messages[0].text.replace(/\n/g, ' ');
        assert.match(said, /refuses this page's origin \(http:\/\/localhost:8000\)\..*--origin http:\/\/localhost:8000$/);
        assert.doesNotMatch(said, /not running/);
    });

    for (const kind of ENGINES) {
        test(`${kind}: an event generates a character, gets its walk sheet, and Show Text uses its face`, async () => {
            const e = makeEngine(kind, {gameDir: daemon.game, parameters: {characterVariable: '3', facesVariable: '4', steps: '1',
                successSwitch: '8'}});
            const name = `Ann${kind}`;
            let waitedFrames = 0;
            const list = [
                generateCommand(e, `hero 0.5 ${name} event=2 seed=7 strength=0.25`,
                    {archetype: 'hero', psi: '0.5', strength: '0.25', name, seed: '7', event: '2'}),
                {code: 101, indent: 0, parameters: ['RmmvGan_New', 3, 0, 2]},
                {code: 401, indent: 0, parameters: ['Hello!']},
            ];
            const {messages} = await runEvent(e, list, 1, {onFrame: (interp) => {
                if (interp._waitMode === 'rmmvGan') waitedFrames++;
            }});
            assert.ok(waitedFrames > 1, 'the event waited for the character');
            assert.deepEqual(messages, [{text: 'Hello!', faceName: name, faceIndex: 3}]);
            assert.equal(e.$gameMap.event(2).characterName(), `$${name}`);
            assert.equal(e.$gameMap.event(2).characterIndex(), 0);
            assert.equal(e.$gameMap.event(1).characterName(), 'Actor1');
            assert.equal(e.$gameVariables.value(3), `$${name}`);
            assert.equal(e.$gameVariables.value(4), name);
            assert.equal(e.$gameSwitches.value(8), true);
            assert.deepEqual(pngSize(path.join(daemon.game, 'img', 'characters', `$${name}.png`)), {width: 144, height: 192});
            assert.deepEqual(pngSize(path.join(daemon.game, 'img', 'faces', `${name}.png`)), {width: 576, height: 288});
            const meta = JSON.parse(fs.readFileSync(path.join(daemon.game, 'rmmv_gan', 'characters', `${name}.json`), 'utf8'));
            assert.deepEqual([meta.archetype, meta.psi, meta.strength, meta.seed, meta.steps], ['hero', 0.5, 0.25, 7, 1]);
            // the new image survives a page refresh (map reload)
            e.$gameMap.setup(1);
            assert.equal(e.$gameMap.event(2).characterName(), `$${name}`);
        });

        test(`${kind}: errors from the daemon reach the player as a message`, async () => {
            const e = makeEngine(kind, {gameDir: daemon.game, parameters: {steps: '1', successSwitch: '8'}});
            e.$gameSwitches.setValue(8, true);
            let r = await runEvent(e, [generateCommand(e, 'nobody', {archetype: 'nobody'})], 1);
            assert.equal(e.$gameSwitches.value(8), false, 'a failure turns the success switch OFF');
            assert.equal(r.messages.length, 1);
            assert.match(r.messages[0].text.replace(/\n/g, ' '), /rmmv-gan: archetype: .*nobody/);
            assert.equal(e.$gameMap.event(1).characterName(), 'Actor1');
            // a name that is taken
            fs.writeFileSync(path.join(daemon.game, 'img', 'faces', `Taken${kind}.png`), 'x');
            r = await runEvent(e, [generateCommand(e, `- - Taken${kind}`, {name: `Taken${kind}`})], 1);
            assert.match(r.messages[0].text.replace(/\n/g, ' '), /rmmv-gan: name: .*is taken/);
            // a wrong token, from the parameters when there is no server.json (a browser-served game)
            const other = tempGame();
            const w = makeEngine(kind, {gameDir: other, parameters: {serverUrl: daemon.url, token: 'wrong-token-0000'}});
            r = await runEvent(w, [generateCommand(w, '', {})], 1);
            assert.match(r.messages[0].text.replace(/\n/g, ' '), /token: missing or wrong .*restart the daemon or fix the Token parameter/);
            fs.rmSync(other, {recursive: true, force: true});
        });

        test(`${kind}: the Generate NPC scene lists archetypes, shows progress, and animates the result`, async () => {
            const e = makeEngine(kind, {gameDir: daemon.game, parameters: {steps: '2', defaultArchetype: 'hero'}});
            e.SceneManager.push(e.RmmvGan.Scene_RmmvGan);
            await runFrames(e, () => e.SceneManager._scene && /ready/.test(e.SceneManager._scene._statusWindow.text()));
            const scene = e.SceneManager._scene;
            const options = scene._optionsWindow;
            assert.deepEqual(plain(scene._settings.archetypes).sort(), ['default', 'hero']);
            assert.ok(options.contents.texts().includes('hero'), options.contents.texts().join('|'));
            assert.ok(options.contents.texts().includes('0.60'), 'psi follows the archetype');
            assert.equal(shownValue(options, 'Strength'), '0.00', 'the archetype\'s default, from /api/pack');
            options.selectSymbol('strength');
            for (let i = 0; i < 3; i++) options.cursorRight();
            options.selectSymbol('psi');
            options.cursorLeft();
            options.selectSymbol('seed');
            options.processOk();  // random -> fixed
            const seed = kind === 'MV' ? 2 : 3;  // one daemon, one game: each engine its own name
            for (let i = 0; i < seed; i++) options.cursorRight();
            assert.ok(options.contents.texts().includes('0.50') && options.contents.texts().includes(String(seed)));
            options.selectSymbol('generate');
            options.processOk();
            assert.ok(options.symbols().includes('stop'), 'Generate turns into Cancel while busy');
            let gauges = 0;
            await runFrames(e, () => {
                if (scene._statusWindow.contents.ops.some((o) => o[0] === 'gradientFillRect')) gauges++;
                return scene._previewWindow.isShowing() || scene._statusWindow._isError;
            });
            assert.ok(!scene._statusWindow._isError, scene._statusWindow.text());
            assert.ok(gauges > 0, 'a progress gauge was drawn');
            assert.equal(scene._statusWindow.text(), `Made $hero_${seed} (faces hero_${seed}, seed ${seed}).`);
            assert.ok(fs.existsSync(path.join(daemon.game, 'img', 'characters', `$hero_${seed}.png`)));
            const meta = JSON.parse(fs.readFileSync(path.join(daemon.game, 'rmmv_gan', 'characters', `hero_${seed}.json`), 'utf8'));
            assert.deepEqual([meta.strength, meta.psi], [0.3, 0.5]);
            const blts = scene._previewWindow.contents.ops.filter((o) => o[0] === 'blt');
            const walk = blts.filter((o) => o[1] === `img/characters/%24hero_${seed}.png`);
            const faces = blts.filter((o) => o[1] === `img/faces/hero_${seed}.png`);
            assert.deepEqual(walk.map((o) => o[3]), [0, 48, 96, 144], 'four directions');
            assert.ok(walk.every((o) => o[4] === 48 && o[5] === 48), 'one 48 x 48 frame each');
            assert.equal(faces.length, 8);
            assert.deepEqual(faces.map((o) => [o[2], o[3]]), [[0, 0], [144, 0], [288, 0], [432, 0], [0, 144], [144, 144], [288, 144], [432, 144]]);
            // it walks: the next step draws another pattern
            const firstPattern = walk[0][2];
            await runFrames(e, () => {
                const w = scene._previewWindow.contents.ops.find((o) => o[0] === 'blt' && o[1].startsWith('img/characters/'));
                return w && w[2] !== firstPattern;
            });
            assert.ok(options.symbols().includes('generate'));
        });

        test(`${kind}: preview shows a saved character`, async () => {
            const e = makeEngine(kind, {gameDir: daemon.game});
            await runEvent(e, [pluginCommand(e, `RmmvGan preview Ann${kind}`, {command: 'preview', args: {name: `Ann${kind}`}})], 1);
            await runFrames(e, () => e.SceneManager._scene._previewWindow.isShowing());
            const texts = e.SceneManager._scene._previewWindow.contents.texts().join(' ');
            assert.match(texts, new RegExp(`\\$Ann${kind}\\s+Ann${kind}`));
        });

        test(`${kind}: transport=files answers through the request folder`, async (t) => {
            if (!watch) return t.skip('this checkout\'s serve has no --watch (the folder watcher)');
            const e = makeEngine(kind, {gameDir: daemon.game, parameters: {transport: 'files', steps: '1', facesVariable: '6'}});
            const name = `File${kind}`;
            const {messages} = await runEvent(e, [generateCommand(e, `hero - ${name}`, {archetype: 'hero', name})], 1);
            assert.deepEqual(messages, []);
            assert.equal(e.$gameMap.event(1).characterName(), `$${name}`);
            assert.equal(e.$gameVariables.value(6), name);
            const done = fs.readdirSync(path.join(daemon.game, 'rmmv_gan', 'done'));
            assert.ok(done.length >= 1 && done.every((f) => /^rg[0-9a-z]+-[0-9a-z]+\.json$/.test(f)), done.join(','));
            assert.deepEqual(fs.readdirSync(path.join(daemon.game, 'rmmv_gan', 'requests')), []);
            // an error answered by the watcher reaches the player too
            const r = await runEvent(e, [generateCommand(e, 'nobody', {archetype: 'nobody'})], 1);
            assert.match(r.messages[0].text.replace(/\n/g, ' '), /could not make the character: archetype:/);
        });
    }
});
