//=============================================================================
// RmmvGan.js - new NPCs from StyleGAN models, made by rmmv-gan
//=============================================================================
/*:
 * @target MZ
 * @plugindesc Generate new characters (walk sheet and eight faces) with rmmv-gan, from the menu or an event.
 * @author rmmv-gan
 *
 * @help RmmvGan.js (RPG Maker MV and MZ)
 *
 * Asks rmmv-gan for a new character and puts it into the game at once:
 * img/characters/$NAME.png (a one-character walk sheet) and img/faces/NAME.png
 * (eight faces, faceIndex 0-7).
 *
 * In test play (Playtest) the plugin starts the daemon itself when it does
 * not answer ("Daemon command", default rmmv-gan, run as
 * `rmmv-gan serve --project GAME --port 0 --idle-exit MINUTES`), and reads
 * its URL and token from rmmv_gan/server.json, so nothing needs to be set.
 * The daemon's output goes to rmmv_gan/daemon.log. A game served to a
 * browser needs the daemon started by hand, in a terminal:
 *
 *     rmmv-gan serve --project "path/to/YourGame" --origin http://localhost:8000
 *
 * With transport "files" it drops request files instead, for
 * `rmmv-gan watch "path/to/YourGame"` (or `serve --watch`) to answer.
 *
 * Plugin command (MV), every argument optional, "-" for the default:
 *   RmmvGan generate [archetype] [psi] [name] [event=this|N] [seed=N]
 *   RmmvGan preview NAME        show a saved character
 *   RmmvGan open                open the Generate NPC scene
 * Arguments can also be given as key=value in any order, and strength only so:
 *   RmmvGan generate archetype=villain psi=0.6 name=Moss event=3 strength=0.2
 * strength (0-1): 0 the archetype's type alone, each seed its own person; 1 the
 * archetype's own character for every seed. Empty: the archetype's default.
 *
 * MZ: the plugin commands "Generate a character", "Preview a character" and
 * "Open the Generate NPC scene" take the same arguments.
 *
 * "generate" makes the event wait (the map keeps running, and a small
 * window shows what it waits for) until the character is ready, then gives
 * the event (this one, or event N) the new walk sheet, and stores the new
 * names in the variables chosen below: the character name ("$NAME") and the
 * face name ("NAME"). A Show Text whose face is the placeholder face
 * (RmmvGan_New, any faceIndex) shows the new face instead. When anything
 * fails, the player sees a message saying why, and the success switch is
 * OFF (ON when a character was made): a Conditional Branch can tell them
 * apart.
 *
 * Main menu: "Generate NPC" (test play only, by default) opens a scene with
 * the pack's archetypes, the archetype's strength (left/right by 0.1; each
 * archetype starts at its own default), psi, seed, a Generate button, a
 * progress gauge, the new walk sheet animated in four directions and the
 * eight faces.
 *
 * More: docs/plugin.md in rmmv-gan.
 *
 * @param serverUrl
 * @text Daemon URL
 * @desc URL of rmmv-gan serve. In test play rmmv_gan/server.json, written by the daemon, wins.
 * @type string
 * @default http://127.0.0.1:8765
 *
 * @param token
 * @text Token
 * @desc The daemon's token. Empty in test play: read from rmmv_gan/server.json. Needed only for a browser-served game.
 * @type string
 * @default
 *
 * @param transport
 * @text Transport
 * @desc http: ask the daemon. files: drop request files for rmmv-gan watch (test play only).
 * @type select
 * @option http
 * @option files
 * @default http
 *
 * @param autoStart
 * @text Start the daemon
 * @desc In test play (NW.js), start rmmv-gan when it does not answer. Never in a deployed game or a browser.
 * @type boolean
 * @on Start it
 * @off Never
 * @default true
 *
 * @param daemonCommand
 * @text Daemon command
 * @desc The program that is rmmv-gan (its full path if it is not on PATH; "quote" a path with spaces). serve and its options follow.
 * @type string
 * @default rmmv-gan
 *
 * @param daemonIdleExit
 * @text Daemon idle exit (minutes)
 * @desc A daemon the plugin started stops after this many minutes without a request (serve --idle-exit).
 * @type number
 * @decimals 2
 * @min 0.01
 * @max 1440
 * @default 30
 *
 * @param defaultArchetype
 * @text Default archetype
 * @desc Archetype when a command gives none. Empty: the pack's default.
 * @type string
 * @default
 *
 * @param defaultPsi
 * @text Default psi
 * @desc Truncation psi when a command gives none (range: the daemon's). Empty: the archetype's.
 * @type string
 * @default
 *
 * @param steps
 * @text Projection steps
 * @desc Projection steps for the faces (range: the daemon's). 0: the pack's. Fewer is faster and less faithful.
 * @type number
 * @min 0
 * @default 0
 *
 * @param timeout
 * @text Timeout (seconds)
 * @desc How long a request may take before the plugin gives up and says so.
 * @type number
 * @min 5
 * @max 3600
 * @default 300
 *
 * @param characterVariable
 * @text Character name variable
 * @desc Receives the new walk sheet's name ($NAME). 0: none.
 * @type variable
 * @default 0
 *
 * @param facesVariable
 * @text Face name variable
 * @desc Receives the new face sheet's name (NAME). 0: none.
 * @type variable
 * @default 0
 *
 * @param successSwitch
 * @text Success switch
 * @desc Turned ON when a "generate" made a character, OFF when it failed, so an event can branch. 0: none.
 * @type switch
 * @default 0
 *
 * @param placeholderFace
 * @text Placeholder face
 * @desc A Show Text with this face shows the latest generated face instead (same faceIndex).
 * @type string
 * @default RmmvGan_New
 *
 * @param menuCommand
 * @text Menu command
 * @desc Name of the main menu command that opens the Generate NPC scene. Empty: no command.
 * @type string
 * @default Generate NPC
 *
 * @param menuTestPlayOnly
 * @text Menu in test play only
 * @desc Show the menu command only in test play (the daemon runs on the developer's machine).
 * @type boolean
 * @on Test play only
 * @off Always
 * @default true
 *
 * @command generate
 * @text Generate a character
 * @desc Make a new character, give it to an event, and store its names in the variables.
 *
 * @arg archetype
 * @text Archetype
 * @desc Empty: the default archetype.
 * @type string
 * @default
 *
 * @arg psi
 * @text Psi
 * @desc Truncation psi (range: the daemon's). Empty: the default.
 * @type string
 * @default
 *
 * @arg strength
 * @text Archetype strength
 * @desc 0: the type alone, each seed its own person; 1: the archetype's own character. Empty: the archetype's.
 * @type string
 * @default
 *
 * @arg name
 * @text Name
 * @desc File name of the new character. Empty: ARCHETYPE_SEED.
 * @type string
 * @default
 *
 * @arg seed
 * @text Seed
 * @desc A whole number for a repeatable character. Empty: random.
 * @type string
 * @default
 *
 * @arg event
 * @text Event
 * @desc "this" for the running event, or an event ID on this map, gets the new walk sheet.
 * @type string
 * @default this
 *
 * @command preview
 * @text Preview a character
 * @desc Open the Generate NPC scene showing a saved character.
 *
 * @arg name
 * @text Name
 * @desc The character's name (with or without the leading $).
 * @type string
 * @default
 *
 * @command open
 * @text Open the Generate NPC scene
 * @desc Open the scene where archetype, psi and seed are chosen.
 */

// Plain ES5 on purpose: MV's NW.js is old, and no build step stands between this file and the game.
var RmmvGan = (function() {
    'use strict';

    var PLUGIN = 'RmmvGan';
    var ENGINE = (typeof Utils !== 'undefined' && Utils.RPGMAKER_NAME === 'MZ') ? 'MZ' : 'MV';
    var IS_MZ = ENGINE === 'MZ';
    var POLL_MS = 400;
    var REQUEST_TIMEOUT_MS = 15000;
    var WAIT_MODE = 'rmmvGan';

    // ------------------------------------------------------------------ parameters

    function numberOr(value, fallback) {
        if (value === undefined || value === null || String(value).trim() === '') return fallback;
        var n = Number(value);
        return isFinite(n) ? n : fallback;
    }

    function parseParameters(raw) {
        raw = raw || {};
        function text(key, fallback) {
            return raw[key] === undefined ? fallback : String(raw[key]);
        }
        return {
            serverUrl: text('serverUrl', 'http://127.0.0.1:8765').trim().replace(/\/+$/, ''),
            token: text('token', '').trim(),
            transport: raw.transport === 'files' ? 'files' : 'http',
            autoStart: raw.autoStart !== 'false',
            daemonCommand: text('daemonCommand', 'rmmv-gan').trim() || 'rmmv-gan',
            daemonIdleExit: Math.min(1440, Math.max(0.01, numberOr(raw.daemonIdleExit, 30))),
            defaultArchetype: text('defaultArchetype', '').trim(),
            defaultPsi: numberOr(raw.defaultPsi, null),
            steps: Math.max(0, Math.floor(numberOr(raw.steps, 0))),
            timeout: Math.max(5, numberOr(raw.timeout, 300)),
            characterVariable: Math.max(0, Math.floor(numberOr(raw.characterVariable, 0))),
            facesVariable: Math.max(0, Math.floor(numberOr(raw.facesVariable, 0))),
            successSwitch: Math.max(0, Math.floor(numberOr(raw.successSwitch, 0))),
            placeholderFace: text('placeholderFace', 'RmmvGan_New').trim(),
            menuCommand: text('menuCommand', 'Generate NPC').trim(),
            menuTestPlayOnly: raw.menuTestPlayOnly !== 'false'
        };
    }

    var params = parseParameters(PluginManager.parameters(PLUGIN));

    // ------------------------------------------------------------------ environment

    // Test play (NW.js) has Node's modules: plain HTTP without CORS, and the game folder.
    function hasNode() {
        return typeof require === 'function' && typeof process === 'object' &&
            !!(Utils.isNwjs && Utils.isNwjs());
    }

    function gameDir() {
        if (!hasNode()) return null;
        try {
            return require('path').dirname(process.mainModule.filename);
        } catch (e) {
            return null;
        }
    }

    // Test play: the editor's Playtest (MV and MZ pass "test" in the page's query).
    function isTestPlay() {
        if (typeof $gameTemp !== 'undefined' && $gameTemp && $gameTemp.isPlaytest) return $gameTemp.isPlaytest();
        return !!(Utils.isOptionValid && Utils.isOptionValid('test'));
    }

    // A game served to a browser: requests carry this page's origin, which the daemon must allow.
    function browserOrigin() {
        return !hasNode() && typeof location !== 'undefined' && location.origin ? location.origin : null;
    }

    function startCommand() {
        var dir = gameDir();
        var origin = browserOrigin();
        return 'rmmv-gan serve --project "' + (dir || 'path/to/YourGame') + '"' + (origin ? ' --origin ' + origin : '');
    }

    function readServerJson() {
        var dir = gameDir();
        if (!dir) return null;
        try {
            var data = JSON.parse(require('fs').readFileSync(require('path').join(dir, 'rmmv_gan', 'server.json'), 'utf8'));
            return data && typeof data.url === 'string' ? data : null;
        } catch (e) {
            return null;
        }
    }

    // The daemon writes server.json each time it starts, so in test play it is fresher than
    // the parameters (a daemon started without --token makes a new token every time).
    function daemonConfig() {
        var found = readServerJson();
        if (found) {
            return {url: String(found.url).replace(/\/+$/, ''), token: String(found.token || params.token), from: 'server.json'};
        }
        return {url: params.serverUrl, token: params.token, from: 'parameters'};
    }

    // ------------------------------------------------------------------ errors

    function makeError(kind, message) {
        return {kind: kind, message: message};
    }

    function offlineError(cfg, detail) {
        return makeError('offline', 'The rmmv-gan daemon is not running at ' + cfg.url + ' (' + detail +
            '). Start it with: ' + startCommand());
    }

    // The daemon runs, but a browser may not read its answers: this page's origin is not listed.
    function originError(cfg) {
        return makeError('origin', 'The rmmv-gan daemon at ' + cfg.url + ' refuses this page\'s origin (' +
            browserOrigin() + '). Restart it with: ' + startCommand());
    }

    function daemonError(status, data) {
        var why = data && typeof data.error === 'string' ? data.error : 'HTTP ' + status;
        if (status === 401) why += ' (the token does not match; restart the daemon or fix the Token parameter)';
        if (status === 429) why = 'the daemon is busy: ' + why;
        return makeError('daemon', 'rmmv-gan: ' + why);
    }

    // ------------------------------------------------------------------ HTTP

    function splitUrl(url) {
        var m = /^(https?):\/\/(\[[^\]]+\]|[^:\/\[\]]+)(?::(\d+))?(\/.*)?$/i.exec(url);
        if (!m) return null;
        return {
            protocol: m[1].toLowerCase(),
            hostname: m[2].replace(/^\[|\]$/g, ''),
            port: m[3] ? Number(m[3]) : (m[1].toLowerCase() === 'https' ? 443 : 80),
            path: m[4] || '/'
        };
    }

    function parseJson(text) {
        try {
            return JSON.parse(text);
        } catch (e) {
            return null;
        }
    }

    // callback(error, status, json); called once.
    function httpRequest(cfg, method, path, body, callback) {
        var called = false;
        function finish(err, status, data) {
            if (!called) {
                called = true;
                callback(err, status, data);
            }
        }
        var headers = {'Accept': 'application/json'};
        var payload = body === undefined ? null : JSON.stringify(body);
        if (cfg.token) headers.Authorization = 'Bearer ' + cfg.token;
        if (payload !== null) headers['Content-Type'] = 'application/json';
        if (hasNode()) {
            nodeRequest(cfg, method, path, headers, payload, finish);
        } else {
            xhrRequest(cfg, method, path, headers, payload, finish);
        }
    }

    // Node's http sends no Origin header, so the daemon's CORS rules do not apply; the Host
    // header is the URL's, which the daemon's Host check accepts for its loopback names.
    function nodeRequest(cfg, method, path, headers, payload, finish) {
        var u = splitUrl(cfg.url + path);
        if (!u) return finish(makeError('config', 'rmmv-gan: the daemon URL "' + cfg.url + '" is not an http:// URL'));
        var Buffer_ = require('buffer').Buffer;
        if (payload !== null) headers['Content-Length'] = Buffer_.byteLength(payload);
        var req;
        try {
            req = require(u.protocol).request({hostname: u.hostname, port: u.port, path: u.path,
                method: method, headers: headers}, function(res) {
                var chunks = [];
                res.on('data', function(chunk) { chunks.push(chunk); });
                res.on('end', function() {
                    finish(null, res.statusCode, parseJson(Buffer_.concat(chunks).toString('utf8')));
                });
                res.on('error', function(e) { finish(offlineError(cfg, e.code || e.message)); });
            });
        } catch (e) {
            return finish(offlineError(cfg, e.message));
        }
        req.on('error', function(e) { finish(offlineError(cfg, e.code || e.message)); });
        req.setTimeout(REQUEST_TIMEOUT_MS, function() {
            finish(offlineError(cfg, 'no answer in ' + REQUEST_TIMEOUT_MS / 1000 + ' s'));
            req.abort();
        });
        req.end(payload === null ? undefined : payload);
    }

    // A browser-served game: the daemon must list this page's origin (serve --origin).
    function xhrRequest(cfg, method, path, headers, payload, finish) {
        var xhr = new XMLHttpRequest();
        try {
            xhr.open(method, cfg.url + path);
            for (var key in headers) {
                if (key !== 'Content-Length') xhr.setRequestHeader(key, headers[key]);
            }
        } catch (e) {
            return finish(offlineError(cfg, e.message));
        }
        xhr.timeout = REQUEST_TIMEOUT_MS;
        xhr.onload = function() { finish(null, xhr.status, parseJson(xhr.responseText)); };
        xhr.onerror = function() { explainXhrFailure(cfg, finish); };
        xhr.ontimeout = function() { finish(offlineError(cfg, 'no answer in ' + REQUEST_TIMEOUT_MS / 1000 + ' s')); };
        xhr.send(payload);
    }

    // A browser hides why a request failed: no daemon, or a daemon refusing this origin. The
    // daemon's /api/health answers every origin (it holds no secrets) and says which it is.
    function explainXhrFailure(cfg, finish) {
        var probe = new XMLHttpRequest();
        try {
            probe.open('GET', cfg.url + '/api/health');
        } catch (e) {
            return finish(offlineError(cfg, e.message));
        }
        probe.timeout = REQUEST_TIMEOUT_MS;
        probe.onload = function() {
            var data = parseJson(probe.responseText);
            if (data && data.origin_allowed === false) return finish(originError(cfg));
            finish(offlineError(cfg, 'the request failed though the daemon answers'));
        };
        probe.onerror = function() { finish(offlineError(cfg, 'cannot connect')); };
        probe.ontimeout = function() { finish(offlineError(cfg, 'no answer in ' + REQUEST_TIMEOUT_MS / 1000 + ' s')); };
        probe.send(null);
    }

    // ------------------------------------------------------------------ starting the daemon

    var START_POLL_MS = 300;
    var STARTING = 'starting rmmv-gan...';

    // Only where the daemon can live: the developer's machine, in test play under NW.js.
    function canStartDaemon() {
        return params.autoStart && hasNode() && isTestPlay() && !!gameDir();
    }

    // The "Daemon command" parameter as words; "double quotes" keep a path with spaces whole.
    function splitCommand(text) {
        var words = [];
        var re = /"([^"]*)"|(\S+)/g;
        var m;
        while ((m = re.exec(String(text))) !== null) words.push(m[1] !== undefined ? m[1] : m[2]);
        return words;
    }

    // What the daemon said when it stopped: click's "Error: ..." line, else the last line (where
    // a Python traceback names its exception).
    function firstErrorLine(text) {
        var lines = String(text).split(/\r?\n/).map(function(l) { return l.trim(); }).filter(Boolean);
        for (var i = 0; i < lines.length; i++) {
            if (/^error\b/i.test(lines[i])) return lines[i];
        }
        return lines.length ? lines[lines.length - 1] : 'no output';
    }

    // One daemon per game: the window that creates this file starts it, the others wait for it.
    // A file older than a start can take is left from a crashed window.
    function takeStartLock(file, maxAgeMs) {
        var fs = require('fs');
        for (var attempt = 0; attempt < 2; attempt++) {
            try {
                fs.closeSync(fs.openSync(file, 'wx'));
                return true;
            } catch (e) {
                if (e.code !== 'EEXIST') return false;
                try {
                    if (Date.now() - fs.statSync(file).mtime.getTime() < maxAgeMs) return false;
                    fs.unlinkSync(file);
                } catch (e2) { /* removed meanwhile: try again */ }
            }
        }
        return false;
    }

    // callback(error, cfg) once the daemon answers; onStage(text) when it has to be started.
    function withDaemon(onStage, callback) {
        var cfg = daemonConfig();
        if (params.transport !== 'http' || !canStartDaemon()) return callback(null, cfg);
        httpRequest(cfg, 'GET', '/api/health', undefined, function(err) {
            if (!err) return callback(null, cfg);
            if (err.kind !== 'offline') return callback(err);
            onStage(STARTING);
            startDaemon(callback);
        });
    }

    var startWaiters = null;  // callbacks waiting for the start in progress in this window

    function startDaemon(callback) {
        if (startWaiters) return startWaiters.push(callback);
        startWaiters = [callback];
        var fs = require('fs');
        var path = require('path');
        var dir = path.join(gameDir(), 'rmmv_gan');
        var lockFile = path.join(dir, 'daemon-start.lock');
        var logFile = path.join(dir, 'daemon.log');
        var limitMs = Math.min(params.timeout, 120) * 1000;
        var deadline = Date.now() + limitMs;
        var failure = null;
        var ownLock = false;

        function done(err) {
            if (ownLock) {
                try { fs.unlinkSync(lockFile); } catch (e) { /* already gone */ }
            }
            var waiting = startWaiters;
            startWaiters = null;
            for (var i = 0; i < waiting.length; i++) waiting[i](err, err ? null : daemonConfig());
        }

        function spawnDaemon() {
            var words = splitCommand(params.daemonCommand);
            var args = words.slice(1).concat(['serve', '--project', gameDir(), '--port', '0',
                '--idle-exit', String(params.daemonIdleExit)]);
            var env = {PYTHONUNBUFFERED: '1'};  // its log is whole when it stops at start
            for (var key in process.env) {
                if (!(key in env)) env[key] = process.env[key];
            }
            var log = fs.openSync(logFile, 'w');
            var child;
            try {
                // Detached: the daemon outlives this window (models stay loaded between
                // Playtests) and stops by itself after --idle-exit minutes without a request.
                child = require('child_process').spawn(words[0], args, {cwd: gameDir(), detached: true,
                    windowsHide: true, stdio: ['ignore', log, log], env: env});
            } finally {
                fs.closeSync(log);
            }
            child.on('error', function(e) {
                failure = makeError('start', e.code === 'ENOENT'
                    ? 'rmmv-gan: cannot start the daemon: the command "' + words[0] + '" was not found. ' +
                      'Install rmmv-gan, or set the plugin parameter "Daemon command" to its full path.'
                    : 'rmmv-gan: cannot start the daemon "' + words[0] + '": ' + (e.code || e.message));
            });
            child.on('exit', function(code) {
                var said = '';
                try { said = fs.readFileSync(logFile, 'utf8'); } catch (e) { /* no log */ }
                if (!failure) {
                    failure = makeError('start', 'rmmv-gan: the daemon stopped as it started (exit code ' + code + '): ' +
                        firstErrorLine(said));
                }
            });
            child.unref();
        }

        // Health first, then the lock: a window that found the lock taken must not take it
        // once the other window has started the daemon and let go of it.
        function poll() {
            httpRequest(daemonConfig(), 'GET', '/api/health', undefined, function(err, status) {
                if (!err && status === 200) return done(null);
                if (failure) return done(failure);
                if (!ownLock && takeStartLock(lockFile, limitMs)) {
                    ownLock = true;
                    try {
                        spawnDaemon();
                    } catch (e) {
                        failure = makeError('start', 'rmmv-gan: cannot start the daemon: ' + e.message);
                        return done(failure);
                    }
                }
                if (Date.now() > deadline) {
                    return done(makeError('start', 'rmmv-gan: the daemon did not answer within ' + limitMs / 1000 +
                        ' s of starting; its output is in ' + logFile));
                }
                setTimeout(poll, START_POLL_MS);
            });
        }

        try {
            mkdirs(dir);
        } catch (e) {
            return done(makeError('start', 'rmmv-gan: cannot write ' + dir + ' (' + e.message + ')'));
        }
        poll();
    }

    // ------------------------------------------------------------------ jobs

    var jobs = {};
    var jobCounter = 0;

    function Job(body) {
        this.key = 'j' + (++jobCounter);
        this.body = body;
        this.state = 'starting';
        this.stage = 'connecting';
        this.progress = 0;
        this.result = null;
        this.error = null;
        this.finished = false;
        this.started = Date.now();
        this.deadline = this.started + params.timeout * 1000;
        this.listeners = [];
        this.cancelRemote = null;
        jobs[this.key] = this;
    }

    Job.prototype.update = function(state, stage, progress) {
        if (this.finished) return;
        this.state = state;
        this.stage = stage || state;
        if (typeof progress === 'number' && progress > this.progress) this.progress = Math.min(1, progress);
    };

    Job.prototype.finish = function(error, result) {
        if (this.finished) return;
        this.finished = true;
        this.error = error || null;
        this.result = error ? null : result;
        this.state = error ? 'failed' : 'done';
        this.stage = this.state;
        if (!error) {
            this.progress = 1;
            clearImageCache('img/characters/', result.character);
            clearImageCache('img/faces/', result.faces);
        }
        var listeners = this.listeners;
        this.listeners = [];
        for (var i = 0; i < listeners.length; i++) listeners[i](this);
    };

    Job.prototype.onFinish = function(fn) {
        if (this.finished) fn(this); else this.listeners.push(fn);
    };

    Job.prototype.cancel = function() {
        if (this.finished) return;
        if (this.cancelRemote) this.cancelRemote();
        this.finish(makeError('cancelled', 'rmmv-gan: cancelled'));
    };

    // What a running job is doing, for the player: "starting rmmv-gan...", "queued", "face 40%".
    function jobText(job) {
        if (job.state === 'starting') return job.stage;
        return job.stage + ' ' + Math.round(job.progress * 100) + '%';
    }

    function checkResult(result) {
        return result && typeof result.character === 'string' && typeof result.faces === 'string';
    }

    function runHttp(job) {
        withDaemon(function(stage) { job.update('starting', stage, 0); }, function(err, cfg) {
            if (job.finished) return;
            if (err) return job.finish(err);
            submit(cfg);
        });
        function submit(cfg) {
            httpRequest(cfg, 'POST', '/api/characters', job.body, function(err, status, data) {
                submitted(cfg, err, status, data);
            });
        }
        function submitted(cfg, err, status, data) {
            if (job.finished) return;
            if (err) return job.finish(err);
            if (status !== 202 || !data || !data.job) return job.finish(daemonError(status, data));
            job.remoteId = data.job;
            job.name = data.name;
            job.update('queued', 'queued', 0);
            job.cancelRemote = function() {
                httpRequest(cfg, 'DELETE', '/api/jobs/' + encodeURIComponent(data.job), undefined, function() {});
            };
            poll(cfg);
        }
        function poll(cfg) {
            if (job.finished) return;
            if (Date.now() > job.deadline) {
                if (job.cancelRemote) job.cancelRemote();
                return job.finish(makeError('timeout', 'rmmv-gan: no character after ' + params.timeout +
                    ' s (the Timeout parameter); the daemon may be busy or slow on this machine'));
            }
            httpRequest(cfg, 'GET', '/api/jobs/' + encodeURIComponent(job.remoteId), undefined, function(err, status, data) {
                if (job.finished) return;
                if (err) return job.finish(err);
                if (status !== 200 || !data) return job.finish(daemonError(status, data));
                job.update(data.state, data.stage, data.progress);
                if (data.state === 'done') {
                    return checkResult(data.result) ? job.finish(null, data.result)
                        : job.finish(makeError('daemon', 'rmmv-gan: the daemon answered without file names'));
                }
                if (data.state === 'failed' || data.state === 'cancelled') {
                    return job.finish(makeError('failed', 'rmmv-gan could not make the character: ' + (data.error || data.state)));
                }
                setTimeout(function() { poll(cfg); }, POLL_MS);
            });
        }
    }

    // The watcher protocol (docs/requests.md): requests/ID.json written as ID.json.tmp and
    // renamed, so the watcher never reads half a request; the answer is responses/ID.json.
    function runFiles(job) {
        if (!hasNode()) {
            return job.finish(makeError('config', 'rmmv-gan: the "files" transport needs test play (NW.js); use "http" in a browser'));
        }
        var fs = require('fs');
        var path = require('path');
        var root = path.join(gameDir(), 'rmmv_gan');
        var id = 'rg' + Date.now().toString(36) + '-' + Math.floor(Math.random() * 0x7fffffff).toString(36);
        var requestFile = path.join(root, 'requests', id + '.json');
        var processingFile = path.join(root, 'processing', id + '.json');
        var responseFile = path.join(root, 'responses', id + '.json');
        try {
            mkdirs(path.join(root, 'requests'));
            fs.writeFileSync(requestFile + '.tmp', JSON.stringify(job.body));
            fs.renameSync(requestFile + '.tmp', requestFile);
        } catch (e) {
            return job.finish(makeError('files', 'rmmv-gan: cannot write the request file (' + e.message + ')'));
        }
        job.remoteId = id;
        job.update('queued', 'waiting for the watcher', 0);
        // Taking back a request nobody claimed yet: the watcher claims by renaming, so a
        // removed file is never half-run.
        job.cancelRemote = function() {
            try { fs.unlinkSync(requestFile); } catch (e) { /* claimed meanwhile */ }
        };
        function poll() {
            if (job.finished) return;
            var text = null;
            try {
                text = fs.readFileSync(responseFile, 'utf8');
            } catch (e) { /* not answered yet */ }
            var answer = text === null ? null : parseJson(text);
            if (answer) {
                if (answer.state === 'done' && checkResult(answer.result)) return job.finish(null, answer.result);
                return job.finish(makeError('failed', 'rmmv-gan could not make the character: ' + (answer.error || answer.state)));
            }
            var unclaimed = fs.existsSync(requestFile);
            if (!unclaimed && fs.existsSync(processingFile)) job.update('running', 'running', 0.5);
            if (Date.now() > job.deadline) {
                job.cancelRemote();
                return job.finish(makeError('timeout', unclaimed
                    ? 'rmmv-gan: no watcher took the request in ' + params.timeout + ' s. Start one with: rmmv-gan watch "' + gameDir() + '"'
                    : 'rmmv-gan: no answer after ' + params.timeout + ' s (the Timeout parameter)'));
            }
            setTimeout(poll, POLL_MS);
        }
        poll();
    }

    function mkdirs(dir) {
        var fs = require('fs');
        if (fs.existsSync(dir)) return;
        mkdirs(require('path').dirname(dir));
        try { fs.mkdirSync(dir); } catch (e) { if (!fs.existsSync(dir)) throw e; }
    }

    // opts: {archetype, psi, strength, seed, name} (missing or null: the defaults)
    function requestBody(opts) {
        opts = opts || {};
        var body = {};
        var archetype = opts.archetype || params.defaultArchetype;
        if (archetype) body.archetype = archetype;
        var psi = opts.psi !== undefined && opts.psi !== null ? opts.psi : params.defaultPsi;
        if (psi !== null && psi !== undefined) body.psi = psi;
        if (opts.strength !== undefined && opts.strength !== null) body.strength = opts.strength;
        if (opts.seed !== undefined && opts.seed !== null) body.seed = opts.seed;
        if (opts.name) body.name = opts.name;
        if (params.steps > 0) body.steps = params.steps;
        return body;
    }

    function generate(opts) {
        var job = new Job(requestBody(opts));
        if (params.transport === 'files') runFiles(job); else runHttp(job);
        return job;
    }

    // callback(error, pack); onStage(text) when the daemon has to be started first.
    function fetchPack(callback, onStage) {
        if (params.transport === 'files') return callback(null, null);
        withDaemon(onStage || function() {}, function(err, cfg) {
            if (err) return callback(err);
            httpRequest(cfg, 'GET', '/api/pack', undefined, function(err, status, data) {
                if (err) return callback(err);
                if (status !== 200 || !data) return callback(daemonError(status, data));
                callback(null, data);
            });
        });
    }

    // ------------------------------------------------------------------ image caches

    // New files must show at once, also after an earlier failed load of the same name.
    function clearImageCache(folder, name) {
        if (!name) return;
        var url = folder + encodeURIComponent(name) + '.png';
        var removed = 0;
        if (ImageManager._cache) {  // MZ: url -> Bitmap
            for (var k in ImageManager._cache) {
                if (k === url || k.indexOf(url + ':') === 0) {
                    delete ImageManager._cache[k];
                    removed++;
                }
            }
        }
        var stores = [];
        if (ImageManager._imageCache && ImageManager._imageCache._items) stores.push(ImageManager._imageCache._items);  // MV 1.5+
        if (ImageManager.cache && ImageManager.cache._inner) stores.push(ImageManager.cache._inner);  // MV before 1.5
        for (var s = 0; s < stores.length; s++) {
            for (var key in stores[s]) {
                if (key === url || key.indexOf(url + ':') === 0) {
                    delete stores[s][key];
                    removed++;
                }
            }
        }
        return removed;
    }

    // ------------------------------------------------------------------ commands

    function blank(v) {
        return v === undefined || v === null || String(v).trim() === '' || String(v).trim() === '-';
    }

    // MV arguments: positional [archetype] [psi] [name], or key=value for any of archetype, psi,
    // strength, name, seed, event. Returns {opts} or {error}.
    function parseGenerateArgs(tokens) {
        var raw = {};
        var order = ['archetype', 'psi', 'name'];
        var next = 0;
        for (var i = 0; i < tokens.length; i++) {
            var t = String(tokens[i]);
            var eq = t.indexOf('=');
            if (eq > 0) {
                raw[t.slice(0, eq).toLowerCase()] = t.slice(eq + 1);
            } else if (next < order.length) {
                raw[order[next++]] = t;
            } else {
                return {error: 'RmmvGan generate: too many arguments ("' + t + '"); use [archetype] [psi] [name] [event=this|N] [seed=N]'};
            }
        }
        return checkArgs(raw);
    }

    function checkArgs(raw) {
        var opts = {archetype: null, psi: null, strength: null, name: null, seed: null, event: 0};
        for (var key in raw) {
            var v = raw[key];
            if (['archetype', 'psi', 'strength', 'name', 'seed', 'event'].indexOf(key) < 0) {
                return {error: 'RmmvGan generate: unknown argument "' + key + '"'};
            }
            if (blank(v)) continue;
            v = String(v).trim();
            if (key === 'psi' || key === 'strength') {
                if (!/^-?\d+(\.\d+)?$|^-?\.\d+$/.test(v)) return {error: 'RmmvGan generate: ' + key + ' must be a number, not "' + v + '"'};
                opts[key] = Number(v);
            } else if (key === 'seed') {
                if (!/^\d+$/.test(v)) return {error: 'RmmvGan generate: seed must be a whole number, not "' + v + '"'};
                opts.seed = Number(v);
            } else if (key === 'event') {
                if (v.toLowerCase() === 'this') opts.event = 0;
                else if (/^\d+$/.test(v)) opts.event = Number(v);
                else return {error: 'RmmvGan generate: event must be "this" or an event ID, not "' + v + '"'};
            } else {
                opts[key] = v;
            }
        }
        return {opts: opts};
    }

    // The message window reads backslashes as escape codes (a Windows path has many).
    function messageText(text) {
        return String(text).replace(/\\/g, '\\\\');
    }

    // Words into lines; fits(line) says whether a line is short enough. A word longer than a
    // line (a path, a URL) is cut, after a / or \\ where one is near the end.
    function wrap(text, fits) {
        var words = String(text).split(' ');
        var lines = [];
        var line = '';
        for (var i = 0; i < words.length; i++) {
            var candidate = line ? line + ' ' + words[i] : words[i];
            if (fits(candidate)) {
                line = candidate;
                continue;
            }
            if (line) lines.push(line);
            line = words[i];
            while (line.length > 1 && !fits(line)) {
                var cut = longestFitting(line, fits);
                var slash = Math.max(line.lastIndexOf('/', cut - 1), line.lastIndexOf('\\', cut - 1));
                if (slash >= cut / 2) cut = slash + 1;
                lines.push(line.slice(0, cut));
                line = line.slice(cut);
            }
        }
        if (line) lines.push(line);
        return lines;
    }

    function longestFitting(word, fits) {
        var n = 1;
        while (n < word.length && fits(word.slice(0, n + 1))) n++;
        return n;
    }

    function showMessage(text) {
        var lines = wrap(text, function(line) { return line.length <= 52; });
        for (var i = 0; i < lines.length; i++) $gameMessage.add(messageText(lines[i]));
    }

    function openScene(previewName) {
        SceneManager.push(Scene_RmmvGan);
        if (SceneManager.prepareNextScene) SceneManager.prepareNextScene(previewName || null);
    }

    var last = {character: null, faces: null};

    function setSuccess(made) {
        if (params.successSwitch > 0) $gameSwitches.setValue(params.successSwitch, made);
    }

    function remember(result) {
        last.character = result.character;
        last.faces = result.faces;
        if (params.characterVariable > 0) $gameVariables.setValue(params.characterVariable, result.character);
        if (params.facesVariable > 0) $gameVariables.setValue(params.facesVariable, result.faces);
    }

    Game_Interpreter.prototype.rmmvGanGenerate = function(parsed) {
        if (parsed.error) {
            setSuccess(false);
            showMessage(parsed.error);
            this.setWaitMode('message');
            return;
        }
        var job = generate(parsed.opts);
        job.eventWaits = true;  // the map shows its progress
        this._rmmvGanWait = {job: job.key, event: parsed.opts.event};
        this.setWaitMode(WAIT_MODE);
    };

    Game_Interpreter.prototype.rmmvGanCommand = function(args) {
        var sub = String(args[0] || '').toLowerCase();
        if (sub === 'generate') {
            this.rmmvGanGenerate(parseGenerateArgs(args.slice(1)));
        } else if (sub === 'preview') {
            openScene(args.slice(1).join(' ').replace(/^\$/, ''));
        } else if (sub === 'open' || sub === 'menu') {
            openScene(null);
        } else {
            showMessage('RmmvGan: unknown command "' + (args[0] || '') + '" (generate, preview, open)');
            this.setWaitMode('message');
        }
    };

    var _pluginCommand = Game_Interpreter.prototype.pluginCommand;
    if (_pluginCommand) {  // MV, and MZ's compatibility path for MV events
        Game_Interpreter.prototype.pluginCommand = function(command, args) {
            _pluginCommand.call(this, command, args);
            if (String(command).toLowerCase() === PLUGIN.toLowerCase()) this.rmmvGanCommand(args || []);
        };
    }

    if (IS_MZ && PluginManager.registerCommand) {
        PluginManager.registerCommand(PLUGIN, 'generate', function(args) {
            this.rmmvGanGenerate(checkArgs({archetype: args.archetype, psi: args.psi, strength: args.strength,
                name: args.name, seed: args.seed, event: args.event}));
        });
        PluginManager.registerCommand(PLUGIN, 'preview', function(args) {
            openScene(String(args.name || '').replace(/^\$/, ''));
        });
        PluginManager.registerCommand(PLUGIN, 'open', function() {
            openScene(null);
        });
    }

    var _updateWaitMode = Game_Interpreter.prototype.updateWaitMode;
    Game_Interpreter.prototype.updateWaitMode = function() {
        if (this._waitMode !== WAIT_MODE) return _updateWaitMode.call(this);
        var wait = this._rmmvGanWait;
        var job = wait ? jobs[wait.job] : null;
        if (job && !job.finished) return true;
        this._waitMode = '';
        this._rmmvGanWait = null;
        if (job) {
            delete jobs[wait.job];
            this.rmmvGanApply(job, wait.event);
        } else if (wait) {  // a save loaded while a request was running: its answer is gone
            setSuccess(false);
            showMessage('rmmv-gan: the character request was lost when the game was loaded; ask again.');
        }
        if ($gameMessage.isBusy()) {
            this.setWaitMode('message');
            return true;
        }
        return false;
    };

    Game_Interpreter.prototype.rmmvGanApply = function(job, eventParam) {
        setSuccess(!job.error);
        if (job.error) {
            showMessage(job.error.message);
            return;
        }
        remember(job.result);
        var target = this.character(eventParam || 0);
        if (target && target !== $gamePlayer) {
            target.setImage(job.result.character, 0);
            if (target.rmmvGanKeepImage) target.rmmvGanKeepImage(job.result.character);
        } else if (eventParam) {
            showMessage('RmmvGan: no event ' + eventParam + ' on this map; the character ' + job.result.character + ' was made but not shown.');
        }
    };

    // The new image survives page refreshes and map reloads: kept in the save, per map and
    // event, for the page it was set on.
    Game_Event.prototype.rmmvGanKeepImage = function(name) {
        var kept = $gameSystem._rmmvGanImages = $gameSystem._rmmvGanImages || {};
        kept[this._mapId + ':' + this._eventId] = {page: this._pageIndex, name: name};
    };

    var _setupPageSettings = Game_Event.prototype.setupPageSettings;
    Game_Event.prototype.setupPageSettings = function() {
        _setupPageSettings.call(this);
        var kept = $gameSystem._rmmvGanImages && $gameSystem._rmmvGanImages[this._mapId + ':' + this._eventId];
        if (kept && kept.page === this._pageIndex) this.setImage(kept.name, 0);
    };

    // A Show Text with the placeholder face shows the latest generated face, same faceIndex.
    var _setFaceImage = Game_Message.prototype.setFaceImage;
    Game_Message.prototype.setFaceImage = function(faceName, faceIndex) {
        if (params.placeholderFace && faceName === params.placeholderFace) {
            var chosen = params.facesVariable > 0 ? $gameVariables.value(params.facesVariable) : last.faces;
            if (typeof chosen === 'string' && chosen) faceName = chosen;
        }
        _setFaceImage.call(this, faceName, faceIndex);
    };

    // ------------------------------------------------------------------ windows

    function initWindow(self, Base, x, y, w, h) {
        if (IS_MZ) Base.prototype.initialize.call(self, new Rectangle(x, y, w, h));
        else Base.prototype.initialize.call(self, x, y, w, h);
    }

    function textColor(self, n) {
        return typeof ColorManager !== 'undefined' ? ColorManager.textColor(n) : self.textColor(n);
    }

    // Options: archetype, strength, psi, seed (changed with left/right or OK), Generate, Close.
    function Window_RmmvGanOptions() {
        this.initialize.apply(this, arguments);
    }

    Window_RmmvGanOptions.prototype = Object.create(Window_Command.prototype);
    Window_RmmvGanOptions.prototype.constructor = Window_RmmvGanOptions;

    Window_RmmvGanOptions.prototype.initialize = function(x, y, w, h, settings) {
        this._settings = settings;
        this._size = {width: w, height: h};
        if (IS_MZ) Window_Command.prototype.initialize.call(this, new Rectangle(x, y, w, h));
        else Window_Command.prototype.initialize.call(this, x, y);
    };

    Window_RmmvGanOptions.prototype.windowWidth = function() {
        return this._size.width;
    };

    Window_RmmvGanOptions.prototype.windowHeight = function() {
        return this._size.height;
    };

    Window_RmmvGanOptions.prototype.makeCommandList = function() {
        var busy = this._settings.busy;
        this.addCommand('Archetype', 'archetype', !busy);
        this.addCommand('Strength', 'strength', !busy);
        this.addCommand('Psi', 'psi', !busy);
        this.addCommand('Seed', 'seed', !busy);
        this.addCommand(busy ? 'Cancel' : 'Generate', busy ? 'stop' : 'generate', true);
        this.addCommand('Close', 'cancel', true);
    };

    Window_RmmvGanOptions.prototype.valueText = function(symbol) {
        var s = this._settings;
        if (symbol === 'archetype') return s.archetypes.length ? s.archetypes[s.archetypeIndex] : '(default)';
        if (symbol === 'strength') return s.strength === null ? '(archetype\'s)' : s.strength.toFixed(2);
        if (symbol === 'psi') return s.psi === null ? '(archetype\'s)' : s.psi.toFixed(2);
        if (symbol === 'seed') return s.seed === null ? 'random' : String(s.seed);
        return '';
    };

    Window_RmmvGanOptions.prototype.drawItem = function(index) {
        var rect = this.itemLineRect ? this.itemLineRect(index) : this.itemRectForText(index);
        var symbol = this.commandSymbol(index);
        this.resetTextColor();
        this.changePaintOpacity(this.isCommandEnabled(index));
        this.drawText(this.commandName(index), rect.x, rect.y, rect.width, 'left');
        var value = this.valueText(symbol);
        if (value) this.drawText(value, rect.x, rect.y, rect.width, 'right');
        this.changePaintOpacity(true);
    };

    // The daemon's request limits ({field: [low, high]}, GET /api/pack); the plugin holds
    // none of its own. Without them (file transport) the watcher checks and answers.
    function withinLimits(limits, field, value) {
        var range = limits && limits[field];
        return range ? Math.max(range[0], Math.min(range[1], value)) : value;
    }

    // value moved by `step` tenths, rounded to hundredths (no 0.30000000000000004 to show or send)
    function tenthsStep(value, step) {
        return Math.round((value + step * 0.1) * 100) / 100;
    }

    // The chosen archetype's default strength, as /api/pack gives it; null (the daemon's
    // default, shown as "(archetype's)") when unknown.
    function archetypeStrength(s) {
        var strength = s.archetypeStrength[s.archetypes[s.archetypeIndex]];
        return typeof strength === 'number' ? strength : null;
    }

    Window_RmmvGanOptions.prototype.isValueSymbol = function(symbol) {
        return symbol === 'archetype' || symbol === 'strength' || symbol === 'psi' || symbol === 'seed';
    };

    Window_RmmvGanOptions.prototype.changeValue = function(symbol, step) {
        var s = this._settings;
        if (s.busy) return;
        if (symbol === 'archetype' && s.archetypes.length) {
            s.archetypeIndex = (s.archetypeIndex + step + s.archetypes.length) % s.archetypes.length;
            var psi = s.archetypePsi[s.archetypes[s.archetypeIndex]];
            if (s.psiFollowsArchetype && typeof psi === 'number') s.psi = psi;
            // Always: a strength suits one archetype (its default is that archetype's own).
            s.strength = archetypeStrength(s);
        } else if (symbol === 'strength') {
            // 0-1 by definition (the type alone .. the archetype's own character), also where
            // the files transport reports no limits.
            s.strength = Math.max(0, Math.min(1, withinLimits(s.limits, 'strength', tenthsStep(s.strength || 0, step))));
        } else if (symbol === 'psi') {
            var base = s.psi === null ? 0.7 : s.psi;
            s.psi = withinLimits(s.limits, 'psi', tenthsStep(base, step));
            s.psiFollowsArchetype = false;
        } else if (symbol === 'seed') {
            // OK (step 0) switches between random and a fixed seed; left/right change it.
            if (step === 0) s.seed = s.seed === null ? (s.lastSeed || 0) : null;
            else s.seed = withinLimits(s.limits, 'seed', Math.max(0, (s.seed === null ? (s.lastSeed || 0) : s.seed) + step));
        } else {
            return;
        }
        SoundManager.playCursor();
        this.refresh();
    };

    Window_RmmvGanOptions.prototype.processOk = function() {
        var symbol = this.currentSymbol();
        if (this.isValueSymbol(symbol)) {
            this.changeValue(symbol, symbol === 'seed' ? 0 : 1);
        } else {
            Window_Command.prototype.processOk.call(this);
        }
    };

    Window_RmmvGanOptions.prototype.cursorRight = function() {
        var symbol = this.currentSymbol();
        if (this.isValueSymbol(symbol)) this.changeValue(symbol, 1);
    };

    Window_RmmvGanOptions.prototype.cursorLeft = function() {
        var symbol = this.currentSymbol();
        if (this.isValueSymbol(symbol)) this.changeValue(symbol, -1);
    };

    // An RPG Maker window class: constructor calling initialize, prototype from Base, and an
    // initialize taking x, y, width, height in both engines.
    function windowClass(Base, init) {
        var C = function() { this.initialize.apply(this, arguments); };
        C.prototype = Object.create(Base.prototype);
        C.prototype.constructor = C;
        C.prototype.initialize = function(x, y, w, h) {
            initWindow(this, Base, x, y, w, h);
            init.call(this);
        };
        return C;
    }

    // Status: a message (an error in red) and the progress gauge of the running job.
    var Window_RmmvGanStatus = windowClass(Window_Base, function() {
        this._text = '';
        this._isError = false;
        this._progress = null;
    });

    Window_RmmvGanStatus.prototype.setStatus = function(text, isError, progress) {
        progress = typeof progress === 'number' ? Math.round(progress * 100) / 100 : null;
        if (text === this._text && !!isError === this._isError && progress === this._progress) return;
        this._text = text;
        this._isError = !!isError;
        this._progress = progress;
        this.refresh();
    };

    Window_RmmvGanStatus.prototype.text = function() {
        return this._text;
    };

    // Every word of a message is shown (a command to type must be whole): wrapped, and in a
    // smaller font when the lines do not fit the window's height.
    Window_RmmvGanStatus.prototype.refresh = function() {
        var c = this.contents;
        c.clear();
        var lh = this.lineHeight();
        var width = this.contentsWidth ? this.contentsWidth() : c.width;
        var y = 0;
        if (this._progress !== null) {
            c.fillRect(0, y + lh / 2 - 6, width, 12, '#202040');
            c.gradientFillRect(0, y + lh / 2 - 6, Math.floor(width * this._progress), 12, '#3070e0', '#80d0ff');
            y += lh;
        }
        this.changeTextColor(this._isError ? textColor(this, 18) : textColor(this, 0));
        var fit = fitText(c, this._text, width, c.height - y, lh);
        for (var i = 0; i < fit.lines.length; i++, y += fit.lineHeight) {
            c.drawText(fit.lines[i], 0, y, width, fit.lineHeight, 'left');
        }
        c.fontSize = fit.baseSize;
        this.resetTextColor();
    };

    // The largest font size (down to half the window's) at which the wrapped text fits;
    // leaves the bitmap at that size. {lines, lineHeight, baseSize}
    function fitText(bitmap, text, width, height, lineHeight) {
        var base = bitmap.fontSize;
        var fits = function(line) { return bitmap.measureTextWidth(line) <= width; };
        for (var size = base; ; size -= 2) {
            bitmap.fontSize = size;
            var lh = Math.floor(lineHeight * size / base);
            var lines = wrap(text, fits);
            if (lines.length * lh <= height || size - 2 < base / 2) {
                return {lines: lines.slice(0, Math.max(1, Math.floor(height / lh))), lineHeight: lh, baseSize: base};
            }
        }
    }

    // ------------------------------------------------------------------ the map's progress window

    var PROGRESS_AFTER_MS = 500;  // a quick character needs no window

    // The newest unfinished job an event waits for, once it has taken long enough to show.
    function eventJobToShow() {
        var shown = null;
        for (var key in jobs) {
            var job = jobs[key];
            if (job.eventWaits && !job.finished && Date.now() - job.started >= PROGRESS_AFTER_MS) shown = job;
        }
        return shown;
    }

    var _mapUpdate = Scene_Map.prototype.update;
    Scene_Map.prototype.update = function() {
        _mapUpdate.call(this);
        this.updateRmmvGanProgress();
    };

    // While an event waits for a character, a small window (top right) says for what.
    Scene_Map.prototype.updateRmmvGanProgress = function() {
        var job = eventJobToShow();
        var w = this._rmmvGanProgressWindow;
        if (!job) {
            if (w) w.visible = false;
            return;
        }
        if (!w) {
            var width = Math.min(420, Math.floor(Graphics.boxWidth / 2));
            var height = this.calcWindowHeight ? this.calcWindowHeight(2, false)
                : Window_Base.prototype.fittingHeight.call(Window_Base.prototype, 2);
            w = this._rmmvGanProgressWindow = new Window_RmmvGanStatus(Graphics.boxWidth - width, 0, width, height);
            this.addWindow(w);
        }
        w.visible = true;
        w.setStatus('Making a character: ' + jobText(job), false, job.progress);
    };

    // Preview: the walk sheet walking in four directions, and the eight faces.
    var Window_RmmvGanPreview = windowClass(Window_Base, function() {
        this._character = null;
        this._faces = null;
        this._frame = 0;
        this._drawnStep = -1;
    });

    Window_RmmvGanPreview.prototype.setCharacter = function(characterName, facesName) {
        clearImageCache('img/characters/', characterName);
        clearImageCache('img/faces/', facesName);
        this._characterName = characterName;
        this._facesName = facesName;
        this._character = ImageManager.loadCharacter(characterName);
        this._faces = ImageManager.loadFace(facesName);
        this._drawnStep = -1;
        this.contents.clear();
    };

    Window_RmmvGanPreview.prototype.isShowing = function() {
        return this._drawnStep >= 0;  // -1: loading, -2: cannot load
    };

    Window_RmmvGanPreview.prototype.update = function() {
        Window_Base.prototype.update.call(this);
        if (!this._character || !this._faces) return;
        var broken = this._character.isError() ? this._characterName : this._faces.isError() ? this._facesName : null;
        if (broken) {  // never ready: say so once instead of waiting forever
            if (this._drawnStep !== -2) {
                this._drawnStep = -2;
                this.contents.clear();
                this.drawText('Cannot load ' + broken + '.png', 0, 0, this.contentsWidth(), 'left');
            }
            return;
        }
        if (!this._character.isReady() || !this._faces.isReady()) return;
        this._frame++;
        var step = Math.floor(this._frame / 12) % 4;
        if (step !== this._drawnStep) {
            this._drawnStep = step;
            this.redraw(step);
        }
    };

    Window_RmmvGanPreview.prototype.redraw = function(step) {
        var c = this.contents;
        var width = this.contentsWidth ? this.contentsWidth() : c.width;
        var lh = this.lineHeight();
        c.clear();
        this.resetTextColor();
        this.drawText(this._characterName + '   ' + this._facesName, 0, 0, width, 'left');
        var bitmap = this._character;
        var big = ImageManager.isBigCharacter(this._characterName);
        var pw = bitmap.width / (big ? 3 : 12);
        var ph = bitmap.height / (big ? 4 : 8);
        var pattern = [0, 1, 2, 1][step];
        var scale = Math.max(1, Math.floor(Math.min(width / 4 / pw, 2)));
        var cell = Math.floor(width / 4);
        for (var d = 0; d < 4; d++) {  // rows: down, left, right, up
            var dx = d * cell + Math.floor((cell - pw * scale) / 2);
            c.blt(bitmap, pattern * pw, d * ph, pw, ph, dx, lh + 4, pw * scale, ph * scale);
        }
        var faces = this._faces;
        var fw = faces.width / 4;
        var fh = faces.height / 2;
        var size = Math.min(cell - 4, fw);
        var top = lh + 8 + ph * scale + 8;
        for (var i = 0; i < 8; i++) {
            c.blt(faces, (i % 4) * fw, Math.floor(i / 4) * fh, fw, fh, (i % 4) * cell, top + Math.floor(i / 4) * (size + 4), size, size);
        }
    };

    // ------------------------------------------------------------------ the scene

    function Scene_RmmvGan() {
        this.initialize.apply(this, arguments);
    }

    Scene_RmmvGan.prototype = Object.create(Scene_MenuBase.prototype);
    Scene_RmmvGan.prototype.constructor = Scene_RmmvGan;

    Scene_RmmvGan.prototype.initialize = function() {
        Scene_MenuBase.prototype.initialize.call(this);
        this._previewName = null;
        this._job = null;
        // strength null: none is sent, and the daemon uses the archetype's default.
        this._settings = {archetypes: [], archetypePsi: {}, archetypeStrength: {}, archetypeIndex: 0,
            psi: params.defaultPsi, psiFollowsArchetype: params.defaultPsi === null, strength: null,
            seed: null, lastSeed: 0, busy: false, limits: null};
    };

    Scene_RmmvGan.prototype.prepare = function(previewName) {
        this._previewName = previewName || null;
    };

    Scene_RmmvGan.prototype.create = function() {
        Scene_MenuBase.prototype.create.call(this);
        var top = this.mainAreaTop ? this.mainAreaTop() : 0;
        var width = Graphics.boxWidth;
        var height = Graphics.boxHeight - top;
        var left = Math.min(320, Math.floor(width * 0.4));
        // MZ sizes windows from the scene (selectable rows are taller); MV from the window.
        var rows = 6;  // Window_RmmvGanOptions' commands
        var optionsHeight = this.calcWindowHeight ? this.calcWindowHeight(rows, true)
            : Window_Base.prototype.fittingHeight.call(Window_Base.prototype, rows);
        this._optionsWindow = new Window_RmmvGanOptions(0, top, left, optionsHeight, this._settings);
        this._optionsWindow.setHandler('generate', this.onGenerate.bind(this));
        this._optionsWindow.setHandler('stop', this.onStop.bind(this));
        this._optionsWindow.setHandler('cancel', this.onClose.bind(this));
        this.addWindow(this._optionsWindow);
        this._statusWindow = new Window_RmmvGanStatus(0, top + optionsHeight, left, height - optionsHeight);
        this.addWindow(this._statusWindow);
        this._previewWindow = new Window_RmmvGanPreview(left, top, width - left, height);
        this.addWindow(this._previewWindow);
        if (this._previewName) {
            this._previewWindow.setCharacter('$' + this._previewName, this._previewName);
            this._statusWindow.setStatus('Saved character ' + this._previewName + '.');
        }
        this.loadPack();
    };

    Scene_RmmvGan.prototype.loadPack = function() {
        var self = this;
        if (params.transport === 'files') {
            if (!this._previewName) this._statusWindow.setStatus('Requests go to rmmv_gan/requests/ for: rmmv-gan watch');
            return;
        }
        if (!this._previewName) this._statusWindow.setStatus('Asking the daemon for its pack...');
        fetchPack(function(err, pack) {
            if (self._job) return;  // a Generate pressed meanwhile reports for itself
            if (err) {
                self._statusWindow.setStatus(err.message, true);
                return;
            }
            self.applyPack(pack);
            if (!self._previewName) {
                self._statusWindow.setStatus('Pack "' + pack.name + '" ready. Choose and press Generate.');
            }
        }, function(stage) {
            if (!self._job) self._statusWindow.setStatus(stage);
        });
    };

    Scene_RmmvGan.prototype.applyPack = function(pack) {
        var s = this._settings;
        if (s.archetypes.length || !pack || !pack.archetypes) return;
        s.limits = pack.limits || null;
        for (var i = 0; i < pack.archetypes.length; i++) {
            s.archetypes.push(pack.archetypes[i].name);
            s.archetypePsi[pack.archetypes[i].name] = pack.archetypes[i].psi;
            s.archetypeStrength[pack.archetypes[i].name] = pack.archetypes[i].strength;
        }
        var wanted = params.defaultArchetype || (pack.defaults && pack.defaults.archetype);
        s.archetypeIndex = Math.max(0, s.archetypes.indexOf(wanted));
        if (s.psiFollowsArchetype) s.psi = s.archetypePsi[s.archetypes[s.archetypeIndex]];
        if (typeof s.psi !== 'number') s.psi = null;
        s.strength = archetypeStrength(s);
        this._optionsWindow.refresh();
    };

    Scene_RmmvGan.prototype.onGenerate = function() {
        var s = this._settings;
        if (!s.archetypes.length && params.transport === 'http') this.loadPack();
        var opts = {archetype: s.archetypes.length ? s.archetypes[s.archetypeIndex] : null, psi: s.psi,
            strength: s.strength, seed: s.seed};
        this._job = generate(opts);
        s.busy = true;
        this._optionsWindow.refresh();
        this._optionsWindow.activate();
        this._statusWindow.setStatus('Sending the request...', false, 0);
    };

    Scene_RmmvGan.prototype.onStop = function() {
        if (this._job) this._job.cancel();
        this._optionsWindow.activate();
    };

    Scene_RmmvGan.prototype.onClose = function() {
        // Leaving stops the request: nobody is there to see it, and the queue is shared.
        if (this._job && !this._job.finished) this._job.cancel();
        this.popScene();
    };

    Scene_RmmvGan.prototype.update = function() {
        Scene_MenuBase.prototype.update.call(this);
        var job = this._job;
        if (!job) return;
        if (!job.finished) {
            this._statusWindow.setStatus('Working: ' + jobText(job), false, job.progress);
            return;
        }
        this._job = null;
        delete jobs[job.key];
        this._settings.busy = false;
        this._optionsWindow.refresh();
        this._optionsWindow.activate();
        if (job.error) {
            this._statusWindow.setStatus(job.error.message, true);
            SoundManager.playBuzzer();
            return;
        }
        remember(job.result);
        if (typeof job.result.seed === 'number') this._settings.lastSeed = job.result.seed;
        this._previewWindow.setCharacter(job.result.character, job.result.faces);
        this._statusWindow.setStatus('Made ' + job.result.character + ' (faces ' + job.result.faces + ', seed ' + job.result.seed + ').', false, 1);
    };

    // ------------------------------------------------------------------ main menu

    function menuEnabled() {
        if (!params.menuCommand) return false;
        return !params.menuTestPlayOnly || isTestPlay();
    }

    var _addOriginalCommands = Window_MenuCommand.prototype.addOriginalCommands;
    Window_MenuCommand.prototype.addOriginalCommands = function() {
        _addOriginalCommands.call(this);
        if (menuEnabled()) this.addCommand(params.menuCommand, 'rmmvGan', true);
    };

    var _createCommandWindow = Scene_Menu.prototype.createCommandWindow;
    Scene_Menu.prototype.createCommandWindow = function() {
        _createCommandWindow.call(this);
        this._commandWindow.setHandler('rmmvGan', function() { openScene(null); });
    };

    return {
        engine: ENGINE,
        params: params,
        parseParameters: parseParameters,
        parseGenerateArgs: parseGenerateArgs,
        requestBody: requestBody,
        generate: generate,
        fetchPack: fetchPack,
        daemonConfig: daemonConfig,
        splitCommand: splitCommand,
        firstErrorLine: firstErrorLine,
        clearImageCache: clearImageCache,
        last: last,
        Scene_RmmvGan: Scene_RmmvGan,
        Window_RmmvGanOptions: Window_RmmvGanOptions,
        Window_RmmvGanStatus: Window_RmmvGanStatus,
        Window_RmmvGanPreview: Window_RmmvGanPreview
    };
})();
