'use strict';

// Usage: node examples/explain.js <address> <model> <image.png>
// Prints the model's top prediction and where its occlusion map peaks.
// Set ONNXPLAIN_TOKEN when the server wants a bearer token.

const fs = require('node:fs');
const { OnnxplainClient, tensorToFloat32Array } = require('..');

async function main([address, modelName, imagePath]) {
  if (!imagePath) {
    console.error('usage: node examples/explain.js <address> <model> <image.png>');
    process.exitCode = 2;
    return;
  }
  const client = new OnnxplainClient(address, { token: process.env.ONNXPLAIN_TOKEN });
  try {
    const image = fs.readFileSync(imagePath);

    const { predictions } = await client.predict(modelName, image, { topK: 1 });
    const [top] = predictions[0].top;
    console.log(`prediction: ${top.label} (class ${top.classIndex}, score ${top.score.toFixed(4)})`);

    const explanation = await client.explain(modelName, image, { method: 'occlusion' });
    const { shape: [, width], data } = tensorToFloat32Array(explanation.attributions[0].map);
    let best = 0;
    for (let i = 1; i < data.length; i++) if (data[i] > data[best]) best = i;
    const [row, col] = [Math.floor(best / width), best % width];
    console.log(`most relevant pixel: row ${row}, column ${col} (relevance ${data[best].toFixed(4)}, ` +
      `${explanation.forwardPasses} forward passes)`);
  } finally {
    client.close();
  }
}

main(process.argv.slice(2)).catch((err) => {
  console.error(err.codeName ? `error: ${err.message}` : err);
  process.exitCode = 1;
});
