// hpchub: the time left of this server's Slurm job in JupyterLab's status bar, warnings before
// the limit (JupyterLab's notifications and the browser's), and an Extend command within the
// site's policy. The data comes from the server extension hpchub.singleuser.timeleft, which
// asks the hub with this server's own token.
import { IStatusBar } from '@jupyterlab/statusbar';
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

const EXTEND = 'hpchub:extend-time';
const SHOW = 'hpchub:show-time';

function fmt(s) {
  s = Math.max(0, Math.floor(s));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return m ? `${h}h ${m}m` : `${h}h`;
  return `${m}m`;
}

async function call(method, body) {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'hpchub', 'time');
  const init = { method };
  if (body !== undefined) init.body = JSON.stringify(body);
  const resp = await ServerConnection.makeRequest(url, init, settings);
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(data.message || `the server answered ${resp.status}`);
  return data;
}

function browserNotify(text) {
  if (typeof Notification === 'undefined') return;
  if (Notification.permission === 'granted') {
    new Notification('Jupyter: time limit', { body: text });
  }
}

function askPermission() {
  if (typeof Notification !== 'undefined' && Notification.permission === 'default') {
    Notification.requestPermission().catch(() => undefined);
  }
}

const plugin = {
  id: 'hpchub-time:plugin',
  description: "The Slurm job's time left, warnings and Extend",
  autoStart: true,
  optional: [IStatusBar],
  activate: (app, statusBar) => {
    let info = null;
    const warned = new Set();
    const notify = (message, type, actions) =>
      app.commands
        .execute('apputils:notify', {
          message,
          type,
          options: { autoClose: type === 'warning' ? false : 8000, actions: actions || [] }
        })
        .catch(() => undefined);

    const node = document.createElement('span');
    node.className = 'hpchub-time-left';
    node.title = "Time left of this server's Slurm job (click to extend)";
    const widget = new Widget({ node });
    widget.addClass('jp-StatusBar-TextItem');
    widget.node.style.cursor = 'pointer';

    const left = () => (info && info.running ? info.end - Date.now() / 1000 : null);
    const render = () => {
      const s = left();
      node.textContent = s === null ? '' : `Time left: ${fmt(s)}`;
      if (s === null) return;
      for (const w of info.warn_before_s || []) {
        if (s <= w && s > 0 && !warned.has(w)) {
          warned.add(w);
          const text = `Your server's time limit ends in ${fmt(s)}: save your work.`;
          const ext = info.extend || {};
          const actions = ext.enabled && !ext.refusal
            ? [{ label: `Extend by ${fmt(ext.step_s)}`, commandId: EXTEND }]
            : [];
          notify(text, 'warning', actions);
          browserNotify(text);
        }
      }
    };
    const refresh = async () => {
      try {
        info = await call('GET');
        // Warnings already passed before this page opened count as shown.
        const s = left();
        if (s !== null && warned.size === 0) {
          for (const w of info.warn_before_s || []) {
            if (w > s) {
              const smaller = (info.warn_before_s || []).filter(x => x < w && x >= s);
              if (smaller.length) warned.add(w);
            }
          }
        }
      } catch (err) {
        info = null;
      }
      render();
    };

    app.commands.addCommand(EXTEND, {
      label: 'Extend the time limit of this server',
      execute: async () => {
        askPermission();
        const step = info && info.extend ? info.extend.step_s : 3600;
        try {
          info = await call('POST', { minutes: Math.round(step / 60) });
          warned.clear();
          for (const w of info.warn_before_s || []) if (w < left()) warned.delete(w);
          notify(`Extended: ${fmt(left())} left now.`, 'success');
        } catch (err) {
          notify(err.message, 'error');
        }
        render();
      }
    });
    app.commands.addCommand(SHOW, {
      label: "Show this server's time left",
      execute: () => {
        askPermission();
        if (!info || !info.running) return;
        const ext = info.extend || {};
        const when = new Date(info.end * 1000).toLocaleString();
        let text = `Slurm job ${info.job_id} ends at ${when} (${fmt(left())} left).`;
        const actions = [];
        if (!ext.enabled) text += ' This hub does not extend time limits.';
        else if (ext.refusal) text += ` Extend: ${ext.refusal}.`;
        else {
          text += ` You may add up to ${fmt(ext.left_s)} more.`;
          actions.push({ label: `Extend by ${fmt(ext.step_s)}`, commandId: EXTEND });
        }
        notify(text, 'info', actions);
      }
    });
    node.addEventListener('click', () => app.commands.execute(SHOW));

    if (statusBar) {
      statusBar.registerStatusItem('hpchub-time:left', {
        item: widget,
        align: 'left',
        rank: 100,
        isActive: () => true
      });
    }
    refresh();
    setInterval(refresh, 60000);
    setInterval(render, 15000);
  }
};

export default plugin;
