// What `wsdeploy init --backend express` gives your backend: require('./wsdeploy').
'use strict';

module.exports = {
  ...require('./signature'),
  ...require('./socket-connections'),
  ...require('./socket-service'),
  ...require('./memory-store'),
  ...require('./redis-store'),
  ...require('./replay-buffer'),
};
