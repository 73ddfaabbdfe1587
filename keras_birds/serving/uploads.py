"""Request bodies -> decoded images, refusing what would hurt the server before it is decoded.

A body is one image (Content-Type image/* or application/octet-stream, or none) or a multipart form whose
file parts are the images. Limits: bytes per request (checked against Content-Length, then while
reading), images per request, and pixels per image (from the image header, before any pixel is decoded:
a 50 KB PNG can claim 50,000 x 50,000 pixels). Each refusal is an ApiError: an HTTP status, a kind (the
/metrics label) and one line for the client.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from keras_birds.data.images import BadImage, TooManyPixels, load_rgb

RAW_TYPES = ("image/", "application/octet-stream")


class ApiError(Exception):
    def __init__(self, status: int, kind: str, message: str):
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 20 * 1024 * 1024  # per request
    max_images: int = 32  # per request
    max_pixels: int = 40_000_000  # per image, as its header claims (a 12 MP phone photo is 12,000,000)


@dataclass
class Upload:
    name: str  # the part's filename, or "body"
    data: bytes


async def capped_stream(request, limits: Limits):
    """The request body in chunks; ApiError 413 as soon as it is (or says it will be) over the byte limit."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_bytes:
        raise _too_large(int(declared), limits)
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limits.max_bytes:
            raise _too_large(seen, limits, at_least=True)
        yield chunk


def _too_large(n: int, limits: Limits, at_least=False) -> ApiError:
    return ApiError(413, "too_large", f"the upload is {'over ' if at_least else ''}{n:,} bytes, over the server's "
                                      f"limit of {limits.max_bytes:,} (--max-upload-mb); send a smaller photo")


def _too_many(n, limits: Limits) -> ApiError:
    return ApiError(413, "too_many_images", f"{n} images in one request, over the server's limit of "
                                            f"{limits.max_images} (--max-images): split them over several requests")


async def read_uploads(request, limits: Limits) -> list:
    """The request's images as Uploads (not yet decoded)."""
    from starlette.formparsers import MultiPartException, MultiPartParser

    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        parser = MultiPartParser(request.headers, capped_stream(request, limits), max_files=limits.max_images,
                                 max_fields=limits.max_images)
        try:
            form = await parser.parse()
        except MultiPartException as e:
            if e.message.startswith("Too many files"):  # Starlette stops at max_files + 1: the count is unknown
                raise _too_many(f"more than {limits.max_images}", limits) from None
            raise ApiError(400, "bad_multipart", f"the multipart body cannot be read: {e.message}") from None
        try:
            uploads = [Upload(value.filename or key, await value.read()) for key, value in form.multi_items()
                       if not isinstance(value, str)]
        finally:
            await form.close()
        if not uploads:
            raise ApiError(400, "no_image", "the multipart form has no file part: send each image as a file "
                                            "(curl -F image=@bird.jpg)")
    elif not content_type or content_type.startswith(RAW_TYPES):
        body = b"".join([chunk async for chunk in capped_stream(request, limits)])
        uploads = [Upload("body", body)]
    else:
        raise ApiError(415, "unsupported_media_type",
                       f"Content-Type {content_type} is not an image: send the image's bytes as image/jpeg (or "
                       f"image/png, application/octet-stream), or a multipart/form-data form")
    if len(uploads) > limits.max_images:
        raise _too_many(len(uploads), limits)
    empty = [u.name for u in uploads if not u.data]
    if empty:
        raise ApiError(400, "empty_body", f"{empty[0]}: no bytes were sent (an empty body or file)")
    return uploads


def decode_all(uploads: list, size: int, limits: Limits) -> np.ndarray:
    """(N, size, size, 3) uint8, decoded and resized exactly as predict does; the first bad one is the error."""
    images = []
    for u in uploads:
        try:
            images.append(load_rgb(io.BytesIO(u.data), size, limits.max_pixels))
        except TooManyPixels as e:
            raise ApiError(413, "too_many_pixels", f"{u.name}: the image claims {e}; refused before decoding (--max-megapixels)") from None
        except BadImage as e:
            raise ApiError(422, "not_an_image", f"{u.name}: not a readable image ({e})") from None
    return np.stack(images)
