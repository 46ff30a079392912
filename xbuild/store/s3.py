"""S3-compatible storage through boto3 (SeaweedFS, Ceph, MinIO, R2, AWS).

Checksums, chosen on purpose: boto3 >= 1.36 adds CRC32 checksums to every upload by default
("when_supported"), which several S3-compatible servers reject or ignore. We send Content-MD5
instead, which every S3 implementation verifies (a mismatch is BadDigest), and compare the ETag
(the MD5 of the object, or of the part MD5s for multipart) after the upload: the server has the
bytes we hashed.

Retries: botocore's "standard" mode retries throttling, 5xx and connection errors with
exponential backoff and jitter, XBUILD_S3_MAX_ATTEMPTS (5) times in all: a few seconds. What
still fails then is a StoreUnavailable (the server's fault: retry later), apart from a StoreError
(the request's or the configuration's fault: retrying changes nothing). A process that asked for
it (store.patience.ride_out_outages: a worker, `artifacts get`) retries a StoreUnavailable for longer."""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import os
from pathlib import Path

from xbuild import environment
from xbuild.errors import StoreError, StoreUnavailable

_AUTH_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken",
               "ExpiredToken", "403"}
# The server's trouble, not the request's: answered by a server restarting or overloaded.
_OUTAGE_CODES = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "Throttling",
                 "ThrottlingException", "RequestLimitExceeded", "BandwidthLimitExceeded"}


def _outage(exc) -> bool:
    """A failure of the server or of the connection to it: worth trying again later."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return status >= 500 or str(exc.response.get("Error", {}).get("Code", "")) in _OUTAGE_CODES
    return isinstance(exc, (ConnectionError, HTTPClientError))  # refused, reset, timed out


def _patient(method):
    """The call, tried again on StoreUnavailable as long as this process asked to (ride_out_outages).
    Every store call is safe to repeat: reads, and writes of whole objects."""
    @functools.wraps(method)
    def patiently(self, *args, **kwargs):
        from xbuild.host.retry import Transient
        from xbuild.host.retry import patiently as retrying
        from xbuild.store.patience import patience

        def once():
            try:
                return method(self, *args, **kwargs)
            except StoreUnavailable as exc:
                raise Transient(exc) from None
        seconds, say = patience()
        return retrying(once, seconds, f"the store {self.url}", say)
    return patiently


def _md5(data: bytes) -> tuple[str, str]:
    digest = hashlib.md5(data, usedforsecurity=False)
    return base64.b64encode(digest.digest()).decode(), digest.hexdigest()


class S3Store:
    def __init__(self, bucket: str, prefix: str, url: str, *, create: bool = False):
        import boto3
        from botocore.config import Config

        self.bucket, self.prefix, self.url = bucket, prefix, url
        config = Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": environment.whole("XBUILD_S3_MAX_ATTEMPTS"), "mode": "standard"},
            connect_timeout=5, read_timeout=60,
            s3={"addressing_style": environment.choice("XBUILD_S3_ADDRESSING")})
        # A session of our own: the default session caches the credentials it first resolved.
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=environment.text("XBUILD_S3_ENDPOINT_URL") or None,
            region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            config=config)
        self._check_bucket(create)

    # --- errors --------------------------------------------------------------------------------
    def _error(self, exc, doing: str) -> StoreError:
        from botocore.exceptions import ClientError, NoCredentialsError
        if isinstance(exc, NoCredentialsError):
            return StoreError(f"{self.url}: no AWS credentials found while {doing}",
                              hint="set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or a profile "
                                   "(AWS_PROFILE)")
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _AUTH_CODES:
                return StoreError(f"{self.url}: the server rejected the credentials ({code}) while {doing}",
                                  hint="check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the "
                                       "profile) and the bucket policy")
            if code == "NoSuchBucket":
                return self._no_bucket()
            error = StoreUnavailable if _outage(exc) else StoreError
            return error(f"{self.url}: {code or 'error'} while {doing}: "
                         f"{exc.response.get('Error', {}).get('Message', '')}")
        error = StoreUnavailable if _outage(exc) else StoreError
        return error(f"{self.url}: cannot reach the server while {doing}: {type(exc).__name__}",
                     hint="check XBUILD_S3_ENDPOINT_URL and that the server is up")

    def _no_bucket(self) -> StoreError:
        return StoreError(f"{self.url}: bucket {self.bucket!r} does not exist",
                          hint="create it, or pass --create-bucket (XBUILD_CREATE_BUCKET=1)")

    def _call(self, doing: str, fn, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            return fn(Bucket=self.bucket, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, doing) from None

    @_patient
    def _check_bucket(self, create: bool) -> None:
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            # A signed listing, not HEAD: some servers answer HEAD without checking the signature,
            # and wrong credentials must be reported here, before any work is done.
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
                status = 404
            if status == 404 and create:
                self._create_bucket()
            elif status == 404:
                raise self._no_bucket() from None
            else:
                raise self._error(exc, "opening the bucket") from None
        except BotoCoreError as exc:
            raise self._error(exc, "opening the bucket") from None

    def _create_bucket(self) -> None:
        """Made here, or just now by another process of the farm (serve's API and its reaper open
        the store at once): either way it is there."""
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            self.client.create_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise self._error(exc, "creating the bucket") from None
        except BotoCoreError as exc:
            raise self._error(exc, "creating the bucket") from None

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    # --- objects -------------------------------------------------------------------------------
    @_patient
    def put_file(self, key, path: Path, sha256, progress=None) -> None:
        size = path.stat().st_size
        meta = {"sha256": sha256}
        if size <= environment.whole("XBUILD_S3_MULTIPART_MB") << 20:
            data = path.read_bytes()
            b64, hexmd5 = _md5(data)
            resp = self._call(f"uploading {key}", self.client.put_object, Key=self._key(key),
                              Body=data, ContentMD5=b64, Metadata=meta)
            expected = hexmd5
            if progress:
                progress(size)
        else:
            resp, expected = self._multipart(key, path, meta, progress)
        if resp.get("ETag", "").strip('"') != expected:
            raise StoreError(f"{self.url}: {key}: the server's checksum does not match what was sent")

    def _multipart(self, key, path, meta, progress):
        k = self._key(key)
        upload = self._call(f"starting upload of {key}", self.client.create_multipart_upload,
                            Key=k, Metadata=meta)["UploadId"]
        parts, digests = [], []
        part_size = environment.whole("XBUILD_S3_PART_MB") << 20
        try:
            with path.open("rb") as f:
                for number, chunk in enumerate(iter(lambda: f.read(part_size), b""), 1):
                    b64, _ = _md5(chunk)
                    digests.append(base64.b64decode(b64))
                    resp = self._call(f"uploading {key} part {number}", self.client.upload_part,
                                      Key=k, UploadId=upload, PartNumber=number, Body=chunk, ContentMD5=b64)
                    parts.append({"ETag": resp["ETag"], "PartNumber": number})
                    if progress:
                        progress(len(chunk))
            done = self._call(f"completing upload of {key}", self.client.complete_multipart_upload,
                              Key=k, UploadId=upload, MultipartUpload={"Parts": parts})
        except BaseException:
            # leave no parts behind (best effort: the server may be the thing that failed)
            with contextlib.suppress(Exception):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=k, UploadId=upload)
            raise
        return done, f"{hashlib.md5(b''.join(digests), usedforsecurity=False).hexdigest()}-{len(parts)}"

    @_patient
    def get_file(self, key, dest: Path) -> None:
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            self.client.download_file(self.bucket, self._key(key), str(dest))
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                raise StoreError(f"{self.url}: object {key} is missing") from None
            raise self._error(exc, f"downloading {key}") from None
        except BotoCoreError as exc:
            raise self._error(exc, f"downloading {key}") from None

    @_patient
    def open(self, key):
        """The object as a stream (images are read as they arrive, never held whole)."""
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise StoreError(f"{self.url}: object {key} is missing") from None
            raise self._error(exc, f"reading {key}") from None
        except BotoCoreError as exc:
            raise self._error(exc, f"reading {key}") from None

    @_patient
    def read(self, key):
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise self._error(exc, f"reading {key}") from None
        except BotoCoreError as exc:
            raise self._error(exc, f"reading {key}") from None

    @_patient
    def write(self, key, data: bytes) -> None:
        b64, _ = _md5(data)
        self._call(f"writing {key}", self.client.put_object, Key=self._key(key), Body=data, ContentMD5=b64)

    @_patient
    def exists(self, key) -> bool:
        return self._head(key) is not None

    def _head(self, key) -> dict | None:
        """The object's metadata, or None when it does not exist."""
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return None
            raise self._error(exc, f"checking {key}") from None
        except BotoCoreError as exc:
            raise self._error(exc, f"checking {key}") from None

    @_patient
    def has(self, key, sha256) -> bool:
        """Present and uploaded by us with this content (its sha256 in the object's metadata)."""
        head = self._head(key)
        return head is not None and head.get("Metadata", {}).get("sha256") == sha256

    @_patient
    def list(self, prefix):
        from botocore.exceptions import BotoCoreError, ClientError
        full = self._key(prefix).rstrip("/") + "/" if prefix or self.prefix else ""
        keys = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
                keys += [o["Key"] for o in page.get("Contents", [])]
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "listing builds") from None
        cut = len(self.prefix) + 1 if self.prefix else 0
        return sorted(k[cut:] for k in keys)

    @_patient
    def delete(self, key) -> None:
        self._call(f"deleting {key}", self.client.delete_object, Key=self._key(key))
