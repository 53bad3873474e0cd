// Records the descriptors of face-api's own FaceRecognitionNet (TensorFlow.js) for the
// parity fixture tests/fixtures/face_api/ (150 x 150 RGB uint8 inputs in inputs.u8, their
// names in names.json). Run it outside the project, in a scratch folder:
//
//   npm install @vladmandic/face-api@1.7.15 @tensorflow/tfjs@4.22.0 @tensorflow/tfjs-backend-wasm@4.22.0
//   node <project>/tools/record_face_api_descriptors.cjs <project>/tests/fixtures/face_api
//
// It writes descriptors.json there, with the descriptors of the cpu and wasm backends.
const fs = require('fs');
const path = require('path');
// The packages come from the scratch folder this is run in, not from beside this script.
const fromCwd = (name) => require.resolve(name, { paths: [process.cwd()] });
const faceapi = require(fromCwd('@vladmandic/face-api/dist/face-api.node-wasm.js'));

const tf = faceapi.tf;
const SIDE = 150;

async function record(backend, names, raw) {
  await tf.setBackend(backend);
  await tf.ready();
  const out = {};
  names.forEach((name, i) => {
    const pixels = raw.slice(i * SIDE * SIDE * 3, (i + 1) * SIDE * SIDE * 3);
    const image = tf.tensor3d(pixels, [SIDE, SIDE, 3], 'int32');
    const descriptor = faceapi.nets.faceRecognitionNet.forwardInput(new faceapi.NetInput([image]));
    out[name] = Array.from(descriptor.dataSync());
  });
  return out;
}

(async () => {
  const dir = process.argv[2];
  const modelDir = path.join(path.dirname(fromCwd('@vladmandic/face-api/package.json')), 'model');
  await tf.setBackend('cpu');
  await tf.ready();
  await faceapi.nets.faceRecognitionNet.loadFromDisk(modelDir);
  const names = JSON.parse(fs.readFileSync(path.join(dir, 'names.json')));
  const raw = new Uint8Array(fs.readFileSync(path.join(dir, 'inputs.u8')));
  const descriptors = {};
  for (const backend of ['cpu', 'wasm']) descriptors[backend] = await record(backend, names, raw);
  const meta = { faceapi: faceapi.version, tfjs: tf.version_core, model: 'face_recognition_model' };
  fs.writeFileSync(path.join(dir, 'descriptors.json'), JSON.stringify({ meta, descriptors }, null, 1));
  console.log(meta, names);
})();
