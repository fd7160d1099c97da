// Drives a running `safecode serve` with the official openai npm package; prints one JSON object with what it saw.
// usage: node client.mjs BASE_URL API_KEY IMAGE.png
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';

const [baseURL, apiKey, imagePath] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });
const image = 'data:image/png;base64,' + readFileSync(imagePath).toString('base64');
const messages = [{ role: 'user', content: [{ type: 'text', text: 'What is in the picture?' }, { type: 'image_url', image_url: { url: image } }] }];
const out = {};

const models = await client.models.list();
out.models = models.data.map(m => m.id);

const done = await client.chat.completions.create({ model: 'default', messages, max_tokens: 6, temperature: 0, safecode: { verdict: 'unsafe' } });
out.text = done.choices[0].message.content;
out.finish = done.choices[0].finish_reason;
out.usage = done.usage;
out.safecode = done.safecode;

const stream = await client.chat.completions.create({ model: out.models[0], messages, max_tokens: 6, temperature: 0, stream: true, stream_options: { include_usage: true } });
let text = '', chunks = 0, usage = null, finish = null;
for await (const chunk of stream) {
  chunks++;
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    text += c.delta?.content ?? '';
    if (c.finish_reason) finish = c.finish_reason;
  }
}
Object.assign(out, { streamText: text, streamChunks: chunks, streamUsage: usage, streamFinish: finish });

try {
  await client.chat.completions.create({ model: 'no-such-model', messages, max_tokens: 2 });
  out.unknownModel = 'accepted';
} catch (e) {
  out.unknownModel = { status: e.status, type: e.type ?? e.error?.type, code: e.code ?? e.error?.code };
}
console.log(JSON.stringify(out));
