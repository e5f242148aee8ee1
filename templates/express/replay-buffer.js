// The last messages sent to each user, so that a socket that reconnects gets what was pushed while it was away.
// Every message gets the next id of its user (n, n+1, n+2...); the browser snippet remembers the last id it saw,
// sends it with its `auth` message, and the Lambda passes it to POST /socket-connections as `resumeAfter`.
// A user's sequence starts at 1000 x the current time in ms, so that it starts above any id of an earlier sequence
// (before a restart of this process): a page that resumes across a restart sees a jump, which it reports as a gap
// (messages were lost with the process), never ids it takes for duplicates.
//
// In memory: right for one backend process. With several instances, implement append() and since() over a store
// they share (a table userId, id, body, createdAt with the primary key (userId, id)), so ids stay one sequence.
'use strict';

class MemoryReplayBuffer {
  /**
   * @param {object} [opts]
   * @param {number} [opts.maxMessages=200]  kept per user; older ones go first
   * @param {number} [opts.maxAgeMs=300000]  kept at most this long: a reconnect takes seconds, a user away longer
   *   reloads their state through your API (the snippet's onGap says when)
   * @param {number} [opts.forgetAfterMs=86400000]  a user sent nothing for this long is forgotten, sequence
   *   included (a page resuming after that sees a gap)
   */
  constructor({ maxMessages = 200, maxAgeMs = 5 * 60 * 1000, forgetAfterMs = 24 * 60 * 60 * 1000 } = {}) {
    if (!(maxMessages >= 1) || !(maxAgeMs >= 1)) throw new Error('maxMessages and maxAgeMs must be positive');
    this.maxMessages = maxMessages;
    this.maxAgeMs = maxAgeMs;
    this.forgetAfterMs = Math.max(forgetAfterMs, maxAgeMs);
    this.users = new Map(); // userId -> { next, entries: [{ id, at, body }] } (ascending ids)
    // Users who stop receiving would keep their last messages forever: sweep them out.
    this.sweeper = setInterval(() => this.sweep(), maxAgeMs);
    this.sweeper.unref?.();
  }

  /** Keeps `encode(id)` (the bytes to send) under the user's next id; returns { id, body }. */
  append(userId, encode, now = Date.now()) {
    let user = this.users.get(userId);
    if (!user) this.users.set(userId, (user = { next: now * 1000, lastAt: now, entries: [] }));
    const id = user.next++;
    const entry = { id, at: now, body: encode(id) };
    user.lastAt = now;
    user.entries.push(entry);
    this.trim(user, now);
    return entry;
  }

  /** What the user was sent after `afterId` and is still kept, oldest first. */
  since(userId, afterId, now = Date.now()) {
    const user = this.users.get(userId);
    if (!user) return [];
    this.trim(user, now);
    return user.entries.filter((e) => e.id > afterId);
  }

  trim(user, now) {
    const { entries } = user;
    let drop = Math.max(0, entries.length - this.maxMessages);
    while (drop < entries.length && now - entries[drop].at > this.maxAgeMs) drop++;
    if (drop > 0) entries.splice(0, drop);
  }

  sweep(now = Date.now()) {
    for (const [userId, user] of this.users) {
      this.trim(user, now);
      if (now - user.lastAt > this.forgetAfterMs) this.users.delete(userId);
    }
  }

  close() {
    clearInterval(this.sweeper);
  }
}

module.exports = { MemoryReplayBuffer };
