'use strict';
// A real `rmmv-gan serve` for the plugin tests: the starter pack of tests/conftest.py (made
// from networks rmmv-gan builds itself) and an empty MV game in a temporary folder.

const fs = require('fs');
const os = require('os');
const path = require('path');
const {execFileSync, spawn} = require('child_process');

const REPO = path.resolve(__dirname, '..', '..');
const PYTHON = process.env.PYTHON || 'python';
const TOKEN = 'plugin-test-token-1234';

function makeGame(root) {
    fs.mkdirSync(path.join(root, 'js'), {recursive: true});
    fs.writeFileSync(path.join(root, 'js', 'rpg_core.js'), '// MV');
    fs.mkdirSync(path.join(root, 'img', 'characters'), {recursive: true});
    fs.mkdirSync(path.join(root, 'img', 'faces'), {recursive: true});
    return root;
}

function env() {
    // One thread: the models are tiny and the machine is shared.
    return Object.assign({}, process.env, {OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1', PYTHONUNBUFFERED: '1'});
}

async function startDaemon({watch = false} = {}) {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rmmvgan-plugin-'));
    const game = makeGame(path.join(tmp, 'game'));
    const pack = path.join(tmp, 'pack');
    // The pack of the Python daemon tests (archetype 'hero', emotions neutral and happy).
    execFileSync(PYTHON, ['-c', "import sys; sys.path.insert(1, 'tests'); from starter_pack import make_starter_pack; make_starter_pack(*sys.argv[1:])", pack], {cwd: REPO, env: env(), stdio: 'pipe'});
    const args = ['-m', 'rmmv_gan.cli', 'serve', '--project', game, '--pack', pack, '--port', '0', '--token', TOKEN];
    if (watch) args.push('--watch');
    const proc = spawn(PYTHON, args, {cwd: REPO, env: env(), stdio: ['ignore', 'pipe', 'pipe']});
    let output = '';
    proc.stdout.on('data', (d) => { output += d; });
    proc.stderr.on('data', (d) => { output += d; });
    let exited = null;
    proc.on('exit', (code) => { exited = code; });
    const serverJson = path.join(game, 'rmmv_gan', 'server.json');
    const end = Date.now() + 180000;
    while (!fs.existsSync(serverJson) || !/daemon on/.test(output)) {
        if (exited !== null) throw new Error(`rmmv-gan serve exited (${exited}):\n${output}`);
        if (Date.now() > end) { proc.kill(); throw new Error(`rmmv-gan serve did not start in 180 s:\n${output}`); }
        await new Promise((r) => setTimeout(r, 100));
    }
    const {url, token} = JSON.parse(fs.readFileSync(serverJson, 'utf8'));
    return {
        url, token, game, tmp, proc, watch,
        output: () => output,
        async stop() {
            if (exited === null) {
                const gone = new Promise((r) => proc.on('exit', r));
                proc.kill('SIGTERM');
                await Promise.race([gone, new Promise((r) => setTimeout(r, 10000))]);
                if (exited === null) proc.kill('SIGKILL');
            }
            fs.rmSync(tmp, {recursive: true, force: true});
        },
    };
}

// Does this checkout's `serve` have --watch (the folder watcher in the same process)?
function serveHasWatch() {
    try {
        const help = execFileSync(PYTHON, ['-m', 'rmmv_gan.cli', 'serve', '--help'], {cwd: REPO, env: env(), stdio: 'pipe'});
        return /--watch/.test(String(help));
    } catch (e) {
        return false;
    }
}

module.exports = {startDaemon, makeGame, serveHasWatch, REPO, TOKEN};
