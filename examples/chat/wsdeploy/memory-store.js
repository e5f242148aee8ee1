// Connections, topic membership and presence in memory: enough for one process. With several instances, use
// RedisConnectionStore (redis-store.js), or implement the same methods over your database. Every method may be
// async; user ids are compared with ===.
//
// The store interface (what SocketService and socketConnections() call):
//   add(connectionId, userId, now)   -> { sockets }          the user's open sockets after adding this one
//   remove(connectionId)             -> { userId, sockets } | null   null when the connection was not known
//   forUser(userId)                  -> [connectionId]
//   connectedUsers()                 -> [userId]             every user with at least one open socket
//   subscribe(userId, topic)         -> boolean              true when the user was not subscribed yet
//   unsubscribe(userId, topic)       -> boolean              true when the user was subscribed
//   subscribers(topic)               -> [userId]
//   topicsOf(userId)                 -> [topic]
//   touch(connectionId, now)                                 the connection was heard from (a post went through)
//   idleSince(before)                -> [connectionId]       connections not heard from since `before` (ms)
//   expectAuth(connectionId, deadline)                       a socket yet to authenticate, until `deadline` (ms);
//                                                            add() and remove() end it
//   overdue(now)                     -> [connectionId]       sockets whose deadline passed unauthenticated, each
//                                                            handed out once
'use strict';

class MemoryConnectionStore {
  constructor() {
    this.connections = new Map(); // connectionId -> { userId, seen }
    this.byUser = new Map(); // userId -> Set(connectionId)
    this.topics = new Map(); // topic -> Set(userId)
    this.userTopics = new Map(); // userId -> Set(topic)
    this.pending = new Map(); // connectionId -> deadline
  }

  add(connectionId, userId, now = Date.now()) {
    this.remove(connectionId);
    this.pending.delete(connectionId);
    this.connections.set(connectionId, { userId, seen: now });
    const mine = setOf(this.byUser, userId);
    mine.add(connectionId);
    return { sockets: mine.size };
  }

  remove(connectionId) {
    this.pending.delete(connectionId);
    const c = this.connections.get(connectionId);
    if (!c) return null;
    this.connections.delete(connectionId);
    const mine = this.byUser.get(c.userId);
    mine?.delete(connectionId);
    if (mine?.size === 0) this.byUser.delete(c.userId);
    return { userId: c.userId, sockets: mine?.size ?? 0 };
  }

  forUser(userId) {
    return [...(this.byUser.get(userId) ?? [])];
  }

  connectedUsers() {
    return [...this.byUser.keys()];
  }

  subscribe(userId, topic) {
    const members = setOf(this.topics, topic);
    if (members.has(userId)) return false;
    members.add(userId);
    setOf(this.userTopics, userId).add(topic);
    return true;
  }

  unsubscribe(userId, topic) {
    const members = this.topics.get(topic);
    if (!members?.delete(userId)) return false;
    if (members.size === 0) this.topics.delete(topic);
    const mine = this.userTopics.get(userId);
    mine?.delete(topic);
    if (mine?.size === 0) this.userTopics.delete(userId);
    return true;
  }

  subscribers(topic) {
    return [...(this.topics.get(topic) ?? [])];
  }

  topicsOf(userId) {
    return [...(this.userTopics.get(userId) ?? [])];
  }

  touch(connectionId, now = Date.now()) {
    const c = this.connections.get(connectionId);
    if (c) c.seen = now;
  }

  idleSince(before) {
    return [...this.connections].filter(([, c]) => c.seen < before).map(([id]) => id);
  }

  expectAuth(connectionId, deadline) {
    if (!this.connections.has(connectionId)) this.pending.set(connectionId, deadline);
  }

  overdue(now = Date.now()) {
    const due = [...this.pending].filter(([, deadline]) => deadline <= now).map(([id]) => id);
    for (const id of due) this.pending.delete(id);
    return due;
  }
}

function setOf(map, key) {
  let s = map.get(key);
  if (!s) map.set(key, (s = new Set()));
  return s;
}

module.exports = { MemoryConnectionStore };
