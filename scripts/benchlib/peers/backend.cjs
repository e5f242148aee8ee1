// The backend wsdeploy's functions call in the bench: accepts every connection at once, so that the route's time
// is the gateway's and the function's. Prints its URL, stops when stdin ends.
'use strict';
const http = require('node:http');

const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(req.method === 'DELETE' ? 204 : 200, { 'content-type': 'application/json' });
    res.end(req.method === 'DELETE' ? undefined : '{}');
  });
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`http://127.0.0.1:${server.address().port}\n`));
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
