// The page: log in, open the socket through the wsdeploy snippet, send through the backend's REST endpoint and
// show what arrives through the socket. `?user=NAME` joins at once.
import { connectSocket } from './wsdeploy-socket.js';
import { WS_URL } from '/env.js';

const $ = (id) => document.getElementById(id);
let session = null;

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
  connectSocket({
    url: WS_URL,
    getToken: () => session.token,
    onMessage: (data) => data.type === 'message' && show(data),
    onStatus: setStatus,
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

const preset = new URLSearchParams(location.search).get('user');
if (preset) join(preset).catch((err) => alert(err.message));
