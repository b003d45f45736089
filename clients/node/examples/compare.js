'use strict';

// Usage: node examples/compare.js <address> <model> <image.png> [more images...]
// Compares two methods on the images: how much their maps agree on the first image (Consistency), and whether
// their ensemble beats both on deletion (Aggregate), with a progress line on stderr. Ctrl-C cancels the call
// on the server. Set ONNXPLAIN_TOKEN when the server wants a bearer token.

const { OnnxplainClient, OnnxplainError } = require('..');

async function main([address, modelName, ...images]) {
  if (images.length === 0) {
    console.error('usage: node examples/compare.js <address> <model> <image.png> [more images...]');
    process.exitCode = 2;
    return;
  }
  const client = new OnnxplainClient(address, { token: process.env.ONNXPLAIN_TOKEN });
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  const progress = ({ stage, done, total }) => process.stderr.write(`\r${stage} ${done}/${total}   `);
  const methods = [['occlusion', { window: 8 }], ['rise', { numMasks: 500 }]];
  try {
    const agreement = await client.consistency(modelName, images[0], {
      settings: methods.map(([method, params]) => ({ label: method, method, params })),
      metric: 'deletion', seed: 1, signal: controller.signal, onProgress: progress,
    });
    console.error();
    console.log(`Spearman correlation of the two maps: ${agreement.spearman.values[1].toFixed(3)}`);

    const ensemble = await client.aggregate(modelName, images, {
      methods, aggregator: 'mean', normalisation: 'max_abs', metric: 'deletion', seed: 1,
      signal: controller.signal, onProgress: progress,
    });
    console.error();
    console.log(`deletion (lower is better) of the mean of ${ensemble.members.join(' and ')}: gain ${ensemble.gain.toFixed(4)} ` +
      'over the best member');
  } finally {
    client.close();
  }
}

main(process.argv.slice(2)).catch((err) => {
  console.error(err instanceof OnnxplainError ? `error: ${err.message}` : err);
  process.exitCode = 1;
});
