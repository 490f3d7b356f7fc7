// Preloaded into s3rver by kernel_s3.testing.S3rver (node -r this s3rver.js ...).
//
// s3rver 3.7.1 answers a PUT once its copy of the body has passed a hashing stream, before the
// file stream holding it has flushed, so a GET right after can read an empty or older object;
// real S3 reads its own writes. This makes a PUT answer only once the file holds what was put
// (its MD5 read back matches), or after two seconds (another PUT to the key may have replaced it).
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const s3rverDir = path.dirname(path.dirname(fs.realpathSync(process.argv[1])));
const Store = require(path.join(s3rverDir, 'lib', 'stores', 'filesystem.js'));
const putObject = Store.prototype.putObject;

Store.prototype.putObject = async function settledPutObject(object) {
  const written = await putObject.call(this, object);
  const file = this.getResourcePath(object.bucket, object.key, 'object');
  const deadline = Date.now() + 2000;
  while (Date.now() < deadline) {
    const held = await fs.promises.readFile(file).catch(() => null);
    if (held && crypto.createHash('md5').update(held).digest('hex') === written.md5) break;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return written;
};
