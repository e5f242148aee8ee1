// The page: log in, join rooms, open the socket through the wsdeploy snippet, send through the backend's REST
// endpoint and show what arrives through the socket, with who is online in each room. `?user=NAME` joins at once
// (`&rooms=lobby,random` the rooms to be in, the lobby always); `&heartbeatMs=...&renewMs=...` shorten the snippet's
// timers for a `wsdeploy dev --idle-timeout 3s --max-connection 10s` session.
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
  li.dataset.room = message.room;
  li.innerHTML = '<time></time> <i></i> <b></b> <span></span>';
  li.querySelector('time').textContent = time;
  li.querySelector('i').textContent = `#${message.room}`;
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

async function call(method, path, body, token) {
  const res = await fetch(path, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json();
  if (!res.ok) throw new Error(data.error || `HTTP ${res.status}`);
  return data;
}
const post = (path, body, token) => call('POST', path, body, token);

// Who is online in each room joined: the list the backend gives, then its presence events.
const online = new Map(); // room -> Set of names
function showOnline(room, names) {
  online.set(room, new Set(names));
  let section = document.querySelector(`#online section[data-room="${room}"]`);
  if (!section) {
    section = document.createElement('section');
    section.dataset.room = room;
    section.innerHTML = '<h2></h2><ul></ul>';
    section.querySelector('h2').textContent = `#${room}`;
    $('online').append(section);
    $('room').append(new Option(`#${room}`, room));
  }
  const ul = section.querySelector('ul');
  ul.replaceChildren(...[...online.get(room)].sort().map((name) => {
    const li = document.createElement('li');
    li.dataset.user = name;
    li.textContent = name;
    return li;
  }));
}

// Presence events are not replayed: after each (re)connect, ask again.
async function refreshOnline() {
  for (const room of online.keys()) {
    const { online: names } = await call('GET', `/rooms/${room}/online`, undefined, session.token);
    showOnline(room, names);
  }
}

async function join(name, rooms) {
  const { token, history } = await post('/login', { name });
  session = { name, token };
  $('login').hidden = true;
  $('chat').hidden = false;
  document.title = `${name} · wsdeploy chat`;
  history.forEach(show);
  for (const room of new Set(['lobby', ...rooms])) {
    const joined = await post(`/rooms/${room}/join`, undefined, token);
    if (room !== 'lobby') joined.history.forEach(show);
    showOnline(room, joined.online);
  }
  const timers = {};
  for (const key of ['heartbeatMs', 'renewMs']) {
    const value = Number(params.get(key));
    if (value > 0) timers[key] = value;
  }
  connectSocket({
    url: WS_URL,
    getToken: () => session.token,
    onMessage: (data) => data.type === 'message' && show(data),
    onPresence: ({ topic, userId, online: on }) => {
      const names = online.get(topic);
      if (!names) return;
      if (on) names.add(userId);
      else names.delete(userId);
      showOnline(topic, names);
    },
    onStatus: (status) => {
      setStatus(status);
      if (status === 'connected') refreshOnline().catch((err) => console.error(err));
    },
    onGap: showGap,
    ...timers,
  });
  $('text').focus();
}

$('login').addEventListener('submit', (e) => {
  e.preventDefault();
  join($('name').value.trim(), []).catch((err) => alert(err.message));
});

$('send').addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = $('text').value;
  try {
    await post('/messages', { text, room: $('room').value }, session.token);
    $('text').value = '';
  } catch (err) {
    alert(err.message);
  }
});

const preset = params.get('user');
const rooms = (params.get('rooms') ?? '').split(',').filter(Boolean);
if (preset) join(preset, rooms).catch((err) => alert(err.message));
