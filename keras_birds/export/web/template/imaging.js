// A photo -> the S x S x 3 RGB bytes `keras-birds predict` feeds the model (data/images.py load_rgb):
// decoded whole, as stored (the EXIF orientation tag is ignored, as Pillow does; no colour profile is
// applied), transparent pixels on white, then squeezed to S x S with Pillow's BILINEAR resize: the same
// integer arithmetic and pass order as Pillow 13's Resample.c (a triangle filter widened by the scale
// factor: an antialiased reduction, not a 4-pixel sample). The picture is read in strips of rows, so a
// 6000 x 4000 photo needs no 96 MB canvas.

export class ImageError extends Error {}

const PRECISION_BITS = 32 - 8 - 2;
const STRIP_ROWS = 256;
const MAX_PIXELS = 100e6;  // past this, decoding alone could exhaust a phone's memory

function triangle(x) {
  if (x < 0) x = -x;
  return x < 1 ? 1 - x : 0;
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for BILINEAR over the whole input.
function coefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 1.0 * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1.0 / filterScale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0.0;
    for (let x = 0; x < xmax; x++) {
      w[x] = triangle((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (let x = 0; x < xmax; x++) {
      const k = ww !== 0.0 ? w[x] / ww : w[x];
      kk[xx * ksize + x] = k < 0 ? Math.trunc(-0.5 + k * (1 << PRECISION_BITS))
                                 : Math.trunc(0.5 + k * (1 << PRECISION_BITS));
    }
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = xmax;
  }
  return {ksize, bounds, kk};
}

function clip8(ss) {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

// JPEG bytes with the EXIF orientation set to 1, so the browser decodes the pixels as stored.
function withoutOrientation(bytes) {
  if (bytes[0] !== 0xff || bytes[1] !== 0xd8) return bytes;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = 2;
  while (p + 4 <= bytes.length && bytes[p] === 0xff) {
    const marker = bytes[p + 1];
    const len = dv.getUint16(p + 2);
    if (marker === 0xda || marker === 0xd9) break;  // image data: no EXIF after this
    if (marker === 0xe1 && len >= 16 && dv.getUint32(p + 4) === 0x45786966) {  // "Exif"
      const tiff = p + 10;
      const little = dv.getUint16(tiff) === 0x4949;
      const ifd = tiff + dv.getUint32(tiff + 4, little);
      if (ifd + 2 > bytes.length) return bytes;
      const n = dv.getUint16(ifd, little);
      for (let i = 0; i < n; i++) {
        const entry = ifd + 2 + 12 * i;
        if (entry + 12 > bytes.length) break;
        if (dv.getUint16(entry, little) === 0x0112 && dv.getUint16(entry + 8, little) !== 1) {
          const copy = bytes.slice();
          new DataView(copy.buffer).setUint16(entry + 8, 1, little);
          return copy;
        }
      }
      return bytes;
    }
    p += 2 + len;
  }
  return bytes;
}

async function decode(blob) {
  let bytes;
  try {
    bytes = new Uint8Array(await blob.arrayBuffer());
  } catch (e) {
    throw new ImageError('could not read the file');
  }
  try {
    return await createImageBitmap(new Blob([withoutOrientation(bytes)]),
                                   {colorSpaceConversion: 'none', imageOrientation: 'from-image'});
  } catch (e) {
    throw new ImageError('not an image this browser can decode (JPEG, PNG, WebP, GIF, BMP, AVIF)');
  }
}

// Calls fn(px, y0, rows) for rows [first, last) of the bitmap, read as RGBA on white, a strip at a time.
function forEachStrip(bitmap, first, last, fn) {
  const width = bitmap.width;
  const canvas = new OffscreenCanvas(width, Math.max(1, Math.min(STRIP_ROWS, last - first)));
  const ctx = canvas.getContext('2d', {willReadFrequently: true, alpha: false});
  ctx.imageSmoothingEnabled = false;
  for (let y0 = first; y0 < last; y0 += canvas.height) {
    const rows = Math.min(canvas.height, last - y0);
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, width, rows);
    ctx.drawImage(bitmap, 0, y0, width, rows, 0, 0, width, rows);
    fn(ctx.getImageData(0, 0, width, rows).data, y0, rows);
  }
}

// One row resampled horizontally: `src` pixels of `stride` bytes from `at`, RGB out from `to`.
function resampleRow(src, at, stride, c, outW, out, to) {
  const half = 1 << (PRECISION_BITS - 1);
  for (let xx = 0; xx < outW; xx++) {
    const xmin = c.bounds[2 * xx], xmax = c.bounds[2 * xx + 1], k = xx * c.ksize;
    let s0 = half, s1 = half, s2 = half;
    for (let x = 0; x < xmax; x++) {
      const i = at + stride * (x + xmin), w = c.kk[k + x];
      s0 += src[i] * w;
      s1 += src[i + 1] * w;
      s2 += src[i + 2] * w;
    }
    out[to + 3 * xx] = clip8(s0);
    out[to + 3 * xx + 1] = clip8(s1);
    out[to + 3 * xx + 2] = clip8(s2);
  }
}

// Pillow 13's two passes (Resample.c ImagingResampleInner): horizontal then vertical, except when the
// height shrinks by more than twice as many pixels as the width, then vertical first. Each pass rounds to
// 8 bits, so the order shows in the last bit.
function resizeBitmap(bitmap, size) {
  const {width, height} = bitmap;
  const needH = width !== size, needV = height !== size;
  const horizontalFirst = !(height - size > 0 && height - size > (width - size) * 2);
  const v = coefficients(height, size);
  const h = needH ? coefficients(width, size) : null;
  const half = 1 << (PRECISION_BITS - 1);
  if (horizontalFirst) {
    const first = v.bounds[0];
    const last = v.bounds[2 * size - 2] + v.bounds[2 * size - 1];
    const temp = new Uint8Array((last - first) * size * 3);
    forEachStrip(bitmap, first, last, (px, y0, rows) => {
      for (let r = 0; r < rows; r++) {
        const to = (y0 - first + r) * size * 3;
        if (needH) {
          resampleRow(px, r * width * 4, 4, h, size, temp, to);
        } else {
          for (let x = 0; x < width; x++) {
            temp[to + 3 * x] = px[(r * width + x) * 4];
            temp[to + 3 * x + 1] = px[(r * width + x) * 4 + 1];
            temp[to + 3 * x + 2] = px[(r * width + x) * 4 + 2];
          }
        }
      }
    });
    if (!needV) return temp;
    const out = new Uint8Array(size * size * 3);
    const rowBytes = size * 3;
    for (let yy = 0; yy < size; yy++) {
      const ymin = v.bounds[2 * yy] - first, ymax = v.bounds[2 * yy + 1], k = yy * v.ksize;
      for (let i = 0; i < rowBytes; i++) {
        let s = half;
        for (let y = 0; y < ymax; y++) s += temp[(y + ymin) * rowBytes + i] * v.kk[k + y];
        out[yy * rowBytes + i] = clip8(s);
      }
    }
    return out;
  }
  // Vertical first (the height shrinks): each source row adds to the output rows whose window holds it.
  const rowBytes = width * 3;
  const acc = new Int32Array(size * rowBytes).fill(half);
  const rowsOf = Array.from({length: height}, () => []);
  for (let yy = 0; yy < size; yy++) {
    for (let y = 0; y < v.bounds[2 * yy + 1]; y++) rowsOf[v.bounds[2 * yy] + y].push(yy, v.kk[yy * v.ksize + y]);
  }
  forEachStrip(bitmap, 0, height, (px, y0, rows) => {
    for (let r = 0; r < rows; r++) {
      const targets = rowsOf[y0 + r];
      for (let t = 0; t < targets.length; t += 2) {
        const to = targets[t] * rowBytes, w = targets[t + 1];
        if (!w) continue;
        for (let x = 0, i = r * width * 4; x < width; x++, i += 4) {
          acc[to + 3 * x] += px[i] * w;
          acc[to + 3 * x + 1] += px[i + 1] * w;
          acc[to + 3 * x + 2] += px[i + 2] * w;
        }
      }
    }
  });
  const temp = Uint8Array.from(acc, clip8);
  if (!needH) return temp;
  const out = new Uint8Array(size * size * 3);
  for (let yy = 0; yy < size; yy++) resampleRow(temp, yy * rowBytes, 3, h, size, out, yy * size * 3);
  return out;
}

// {pixels: Uint8Array of size*size*3 (RGB, row-major), width, height} of an image file.
export async function loadRGB(blob, size) {
  const bitmap = await decode(blob);
  try {
    const {width, height} = bitmap;
    if (!width || !height) throw new ImageError('the image is empty');
    if (width * height > MAX_PIXELS) {
      throw new ImageError(`the image is too large (${width} x ${height}, over ${MAX_PIXELS / 1e6} megapixels)`);
    }
    return {pixels: resizeBitmap(bitmap, size), width, height};
  } finally {
    bitmap.close();
  }
}
