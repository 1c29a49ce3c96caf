/**
 * Draws core/data/robot.png, the thumbnail pushed beside images when SREGISTRY_THUMBNAIL is unset.
 * Drive uses a thumbnail only when it is at least 220 px wide (1600 px recommended, 2 MB at most),
 * so the robot is 256 px: flat colours keep it near 2 KB. Run: `deno run -W tools/make_robot.ts`.
 * @module
 */

import { deflateSync } from "node:zlib";

const SIZE = 256;
type Rgba = [number, number, number, number];
const CLEAR: Rgba = [0, 0, 0, 0];
const BODY: Rgba = [96, 125, 139, 255];
const FACE: Rgba = [176, 190, 197, 255];
const EYE: Rgba = [38, 50, 56, 255];
const LIGHT: Rgba = [255, 87, 34, 255];

/** Each shape in drawing order: later ones cover earlier ones. */
const SHAPES: [(x: number, y: number) => boolean, Rgba][] = [
  [(x, y) => Math.hypot(x - 128, y - 28) <= 14, LIGHT], // antenna light
  [(x, y) => x >= 123 && x < 133 && y >= 40 && y < 64, BODY], // antenna
  [(x, y) => x >= 40 && x < 216 && y >= 64 && y < 208, BODY], // head
  [(x, y) => x >= 24 && x < 40 && y >= 112 && y < 160, BODY], // ears
  [(x, y) => x >= 216 && x < 232 && y >= 112 && y < 160, BODY],
  [(x, y) => x >= 56 && x < 200 && y >= 80 && y < 192, FACE], // face
  [(x, y) => Math.hypot(x - 96, y - 124) <= 18, EYE], // eyes
  [(x, y) => Math.hypot(x - 160, y - 124) <= 18, EYE],
  [(x, y) => x >= 88 && x < 168 && y >= 160 && y < 172 && (x - 88) % 16 < 12, EYE], // mouth
  [(x, y) => x >= 72 && x < 184 && y >= 216 && y < 248, BODY], // neck and shoulders
];

function pixel(x: number, y: number): Rgba {
  let c = CLEAR;
  for (const [inside, colour] of SHAPES) if (inside(x, y)) c = colour;
  return c;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** The PNG bytes of the robot. */
export function robotPng(): Uint8Array {
  const raw = new Uint8Array(SIZE * (1 + SIZE * 4));
  for (let y = 0; y < SIZE; y++) {
    const row = y * (1 + SIZE * 4); // filter byte 0 (none), then RGBA pixels
    for (let x = 0; x < SIZE; x++) raw.set(pixel(x, y), row + 1 + x * 4);
  }
  const header = new Uint8Array(13);
  const h = new DataView(header.buffer);
  h.setUint32(0, SIZE);
  h.setUint32(4, SIZE);
  header.set([8, 6, 0, 0, 0], 8); // 8-bit RGBA, deflate, no filter method, no interlace
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", new Uint8Array(deflateSync(raw, { level: 9 }))),
    chunk("IEND", new Uint8Array()),
  ];
  const png = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    png.set(p, at);
    at += p.length;
  }
  return png;
}

if (import.meta.main) {
  const target = new URL("../core/data/robot.png", import.meta.url);
  Deno.writeFileSync(target, robotPng());
  console.log(`wrote ${target.pathname}`);
}
