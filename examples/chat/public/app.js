// The page: log in, open the socket through the wsdeploy snippet, send through the backend's REST endpoint and
// show what arrives through the socket. `?user=NAME` joins at once; `&heartbeatMs=...&renewMs=...` shorten the
// snippet's timers for a `wsdeploy dev --idle-timeout 3s --max-connection 10s` session.
import { connectSocket } from './wsdeploy-socket.js';
import { WS_URL } from '/env.js';

const $ = (id) => document.getElementById(id);
let session = null;
const params = new URLSearchParams(location.search);

function setStatus(status) {
  $('status').textContent = status;
  $('status').dataset.status = status;
}

function show(message) {
  const li = document.createElement('li');
  const time = new Date(message.at).toLocaleTimeString();
  li.innerHTML = '<time></time> <b></b> <span></span>';
  li.querySelector('time').textContent = time;
  li.querySelector('b').textContent = message.from;
  li.querySelector('span').textContent = message.text;
  $('messages').append(li);
  li.scrollIntoView({ block: 'end' });
}

// The backend no longer had some messages when this page came back: a real app would reload its state here.
function showGap() {
  const li = document.createElement('li');
  li.className = 'gap';
  li.textContent = 'some messages were missed while offline';
  $('messages').append(li);
}

async function post(path, body, token) {
  const res = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const data = await res.json();
  if (!res.ok) throw new Error(data.error || `HTTP ${res.status}`);
  return data;
}

async function join(name) {
  const { token, history } = await post('/login', { name });
  session = { name, token };
  $('login').hidden = true;
  $('chat').hidden = false;
  document.title = `${name} · wsdeploy chat`;
  history.forEach(show);
  const timers = {};
  for (const key of ['heartbeatMs', 'renewMs']) {
    const value = Number(params.get(key));
    if (value > 0) timers[key] = value;
  }
  connectSocket({
    url: WS_URL,
    getToken: () => session.token,
    onMessage: (data) => data.type === 'message' && show(data),
    onStatus: setStatus,
    onGap: showGap,
    ...timers,
  });
  $('text').focus();
}

$('login').addEventListener('submit', (e) => {
  e.preventDefault();
  join($('name').value.trim()).catch((err) => alert(err.message));
});

$('send').addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = $('text').value;
  try {
    await post('/messages', { text }, session.token);
    $('text').value = '';
  } catch (err) {
    alert(err.message);
  }
});

const preset = params.get('user');
if (preset) join(preset).catch((err) => alert(err.message));
