/**
 * The S3 backend: one export = one multipart upload, one appended chunk = one part.
 *
 * Part N of a resumed attempt is uploaded under part number N again, which replaces whatever a
 * crashed attempt had uploaded there; completion lists exactly the checkpoint's parts, so parts
 * uploaded beyond the last delivered checkpoint are dropped by S3.
 */
import {
  AbortMultipartUploadCommand,
  type BucketLocationConstraint,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  type Part,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import type { S3Settings } from "../config/mod.ts";
import { checkByteRange } from "./byte_range.ts";
import { checkComposeSource, planComposition } from "./compose.ts";
import { completedEarlier } from "./completed_upload.ts";
import { attachmentDisposition } from "./disposition.ts";
import { KeyOutOfBoundsError, StorageUnavailableError, UploadNotFoundError } from "./errors.ts";
import { keyBoundsProblem } from "./key_bounds.ts";
import type {
  IncompleteUpload,
  ObjectStorage,
  UploadedPart,
  UploadRef,
  UploadState,
} from "./types.ts";
import { partsDigest } from "./upload_ref.ts";

/** Where the bucket lives and how to reach it (the `s3` section of the config), and how to ask. */
export interface S3StorageOptions extends S3Settings {
  /** Attempts per request: the SDK retries throttling, 5xx and network errors with backoff. */
  maxAttempts?: number;
  /** An existing client to use instead of building one (its owner destroys it). */
  client?: S3Client;
}

/** S3 allows at most 10,000 parts per multipart upload. */
const MAX_PARTS = 10_000;
/** S3's smallest part but the last, and its largest server-side copy of one part. */
const MIN_PART = 5 * 1024 * 1024;
const MAX_COPY_PART = 5 * 1024 * 1024 * 1024;
/** SigV4 presigned URLs are valid for at most 7 days. */
const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

/** Builds the S3 client the backend uses, with retries and timeouts suited to long uploads. */
export function createS3Client(options: Omit<S3StorageOptions, "bucket" | "client">): S3Client {
  const credentials = options.accessKeyId && options.secretAccessKey
    ? { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey }
    : undefined;
  return new S3Client({
    endpoint: options.endpoint,
    region: options.region,
    forcePathStyle: options.forcePathStyle,
    credentials,
    maxAttempts: options.maxAttempts ?? 5,
    requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000 },
  });
}

/** Object storage on an S3 bucket (AWS S3, MinIO, moto). */
export function createS3Storage(options: S3StorageOptions): ObjectStorage {
  const client = options.client ?? createS3Client(options);
  const Bucket = options.bucket;
  const where = `S3 bucket ${Bucket} at ${options.endpoint ?? `AWS ${options.region}`}`;

  /** `client.send`, with "no answer" errors turned into {@link StorageUnavailableError}. */
  const send: S3Client["send"] = (async (command: Parameters<S3Client["send"]>[0]) => {
    try {
      return await client.send(command);
    } catch (error) {
      throw isUnreachable(error) ? new StorageUnavailableError(where, error) : error;
    }
  }) as S3Client["send"];

  function checkBackend(state: Pick<UploadState, "backend" | "key">): void {
    if (state.backend !== "s3") {
      throw new Error(`upload state belongs to the ${state.backend} backend: ${state.key}`);
    }
  }

  async function headObject(key: string): Promise<{ size: number } | null> {
    if (keyBoundsProblem(key)) return null; // S3 refuses to create such a key
    try {
      const head = await send(new HeadObjectCommand({ Bucket, Key: key }));
      return { size: head.ContentLength ?? 0 };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  /**
   * Every part S3 holds for the upload (each page of ListParts), by part number; throws
   * `UploadNotFoundError` when the upload is gone (completed, aborted or never begun).
   */
  async function partsByNumber(state: UploadState): Promise<Map<number | undefined, Part>> {
    const parts: Part[] = [];
    let marker: string | undefined;
    try {
      do {
        const page = await send(
          new ListPartsCommand({
            Bucket,
            Key: state.key,
            UploadId: state.uploadId,
            PartNumberMarker: marker,
          }),
        );
        parts.push(...(page.Parts ?? []));
        marker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
      } while (marker);
    } catch (error) {
      if (isNotFound(error)) throw new UploadNotFoundError(state.key, state.uploadId);
      throw error;
    }
    return new Map(parts.map((p) => [p.PartNumber, p]));
  }

  /** False only when S3 says the upload is gone; true when it exists or cannot be told. */
  async function uploadMayExist(state: UploadState): Promise<boolean> {
    try {
      await send(
        new ListPartsCommand({ Bucket, Key: state.key, UploadId: state.uploadId, MaxParts: 1 }),
      );
      return true;
    } catch (error) {
      return !isNotFound(error);
    }
  }

  async function readObject(
    key: string,
    range?: { start: number; end: number },
  ): Promise<ReadableStream<Uint8Array>> {
    checkByteRange(key, range);
    checkKey(key);
    const got = await send(
      new GetObjectCommand({
        Bucket,
        Key: key,
        Range: range ? `bytes=${range.start}-${range.end - 1}` : undefined,
      }),
    );
    if (!got.Body) throw new Error(`S3 returned no body: ${key}`);
    return got.Body.transformToWebStream() as ReadableStream<Uint8Array>;
  }

  /**
   * Refuses, with a {@link KeyOutOfBoundsError} naming the limit, a key S3 would refuse
   * (`KeyTooLongError`: more than 1,024 bytes of UTF-8) or could not encode (a lone surrogate),
   * before any request: an export fails on it at once and says why (storage/key_bounds.ts).
   */
  function checkKey(key: string): void {
    const problem = keyBoundsProblem(key);
    if (problem) throw new KeyOutOfBoundsError(key, problem);
  }

  /** The copy-source header of `key` (bucket and key, URL-encoded segment by segment). */
  function copySource(key: string): string {
    return `${Bucket}/${key.split("/").map(encodeURIComponent).join("/")}`;
  }

  return {
    backend: "s3",

    readObject,

    async composeObject(
      key: string,
      contentType: string,
      sources: readonly { key: string; size: number }[],
    ): Promise<{ size: number }> {
      checkKey(key);
      for (const source of sources) {
        checkComposeSource(key, source, await headObject(source.key));
      }
      const total = sources.reduce((n, s) => n + s.size, 0);
      const plan = planComposition(sources.map((s) => s.size), {
        minPart: MIN_PART,
        maxCopy: MAX_COPY_PART,
      });
      if (plan.length === 0) {
        await send(
          new PutObjectCommand({
            Bucket,
            Key: key,
            Body: new Uint8Array(0),
            ContentType: contentType,
          }),
        );
        return { size: 0 };
      }
      const created = await send(
        new CreateMultipartUploadCommand({ Bucket, Key: key, ContentType: contentType }),
      );
      const UploadId = created.UploadId;
      if (!UploadId) throw new Error(`S3 did not return an upload id: ${key}`);
      try {
        const parts: { PartNumber: number; ETag: string }[] = [];
        for (const [index, part] of plan.entries()) {
          const PartNumber = index + 1;
          let etag: string | undefined;
          if (part.kind === "copy") {
            const { source, start, end } = part.range;
            const copied = await send(
              new UploadPartCopyCommand({
                Bucket,
                Key: key,
                UploadId,
                PartNumber,
                CopySource: copySource(sources[source].key),
                CopySourceRange: `bytes=${start}-${end - 1}`,
              }),
            );
            etag = copied.CopyPartResult?.ETag;
          } else {
            // small pieces (< 5 MiB in all): read them into one part
            const body = new Uint8Array(part.size);
            let offset = 0;
            for (const range of part.ranges) {
              const stream = await readObject(sources[range.source].key, range);
              for await (const chunk of stream) {
                if (offset + chunk.byteLength > part.size) {
                  throw new Error(
                    `S3 returned more bytes than asked: ${sources[range.source].key}`,
                  );
                }
                body.set(chunk, offset);
                offset += chunk.byteLength;
              }
            }
            if (offset !== part.size) {
              throw new Error(`S3 returned ${offset} of ${part.size} bytes for part ${PartNumber}`);
            }
            const uploaded = await send(
              new UploadPartCommand({
                Bucket,
                Key: key,
                UploadId,
                PartNumber,
                Body: body,
                ContentLength: body.byteLength,
              }),
            );
            etag = uploaded.ETag;
          }
          if (!etag) throw new Error(`S3 did not return an ETag for part ${PartNumber}: ${key}`);
          parts.push({ PartNumber, ETag: etag });
        }
        await send(
          new CompleteMultipartUploadCommand({
            Bucket,
            Key: key,
            UploadId,
            MultipartUpload: { Parts: parts },
          }),
        );
      } catch (error) {
        await send(new AbortMultipartUploadCommand({ Bucket, Key: key, UploadId })).catch(() => {});
        throw error;
      }
      const head = await headObject(key);
      if (head?.size !== total) {
        throw new Error(
          `composed object has ${head?.size ?? "no"} bytes, expected ${total}: ${key}`,
        );
      }
      return head;
    },

    async ensureReady(): Promise<void> {
      try {
        await send(new HeadBucketCommand({ Bucket }));
        return;
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
      try {
        await send(
          new CreateBucketCommand({
            Bucket,
            CreateBucketConfiguration: options.region === "us-east-1"
              ? undefined
              : { LocationConstraint: options.region as BucketLocationConstraint },
          }),
        );
      } catch (error) {
        if (errorName(error) !== "BucketAlreadyOwnedByYou") throw error;
      }
    },

    async beginUpload(key: string, contentType: string): Promise<UploadState> {
      checkKey(key);
      const created = await send(
        new CreateMultipartUploadCommand({ Bucket, Key: key, ContentType: contentType }),
      );
      if (!created.UploadId) {
        throw new Error(`S3 did not return an upload id: ${key}`);
      }
      return {
        backend: "s3",
        key,
        contentType,
        uploadId: created.UploadId,
        parts: [],
        bytes: 0,
      };
    },

    async appendPart(state: UploadState, chunk: Uint8Array): Promise<UploadState> {
      checkBackend(state);
      if (chunk.byteLength === 0) {
        throw new Error(`cannot append an empty part: ${state.key}`);
      }
      const partNumber = state.parts.length + 1;
      if (partNumber > MAX_PARTS) {
        throw new Error(`upload has reached the S3 limit of ${MAX_PARTS} parts: ${state.key}`);
      }
      let etag: string | undefined;
      try {
        const uploaded = await send(
          new UploadPartCommand({
            Bucket,
            Key: state.key,
            UploadId: state.uploadId,
            PartNumber: partNumber,
            Body: chunk,
            ContentLength: chunk.byteLength,
          }),
        );
        etag = uploaded.ETag;
      } catch (error) {
        if (!isNotFound(error) && await uploadMayExist(state)) throw error;
        throw new UploadNotFoundError(state.key, state.uploadId);
      }
      if (!etag) {
        throw new Error(`S3 did not return an ETag for part ${partNumber}: ${state.key}`);
      }
      const part: UploadedPart = { partNumber, etag, size: chunk.byteLength };
      return { ...state, parts: [...state.parts, part], bytes: state.bytes + part.size };
    },

    async resumeUpload(state: UploadState): Promise<UploadState> {
      checkBackend(state);
      // Parts beyond the checkpoint may exist (a crashed attempt uploaded them); they are
      // replaced or left out at completion. The checkpoint's own parts must be intact.
      const byNumber = await partsByNumber(state);
      for (const part of state.parts) {
        const found = byNumber.get(part.partNumber);
        if (!found || unquote(found.ETag) !== unquote(part.etag) || found.Size !== part.size) {
          throw new Error(
            `upload part ${part.partNumber} does not match the checkpoint: ${state.key} (${state.uploadId})`,
          );
        }
      }
      return { ...state, parts: [...state.parts] };
    },

    async recoverUpload(ref: UploadRef): Promise<UploadState> {
      checkBackend(ref);
      const state: UploadState = {
        backend: "s3",
        key: ref.key,
        contentType: ref.contentType,
        uploadId: ref.uploadId,
        parts: [],
        bytes: 0,
      };
      // Parts beyond partCount may exist (a crashed attempt uploaded them); they are replaced
      // or left out at completion. Parts 1..partCount must be exactly the checkpoint's.
      const byNumber = await partsByNumber(state);
      for (let partNumber = 1; partNumber <= ref.partCount; partNumber++) {
        const found = byNumber.get(partNumber);
        if (!found?.ETag || found.Size === undefined) break;
        state.parts.push({ partNumber, etag: found.ETag, size: found.Size });
        state.bytes += found.Size;
      }
      if (
        state.parts.length !== ref.partCount || state.bytes !== ref.bytes ||
        partsDigest(state.parts) !== ref.partsDigest
      ) {
        throw new Error(
          `upload in S3 does not match the checkpoint: ${ref.key} (${ref.uploadId}): ` +
            `${state.parts.length} of ${ref.partCount} parts, ${state.bytes} of ${ref.bytes} bytes`,
        );
      }
      return state;
    },

    async completeUpload(state: UploadState): Promise<{ size: number }> {
      checkBackend(state);
      try {
        if (state.parts.length === 0) {
          // S3 cannot complete a multipart upload without parts: publish an empty object
          // and drop the upload (both steps are safe to repeat).
          await send(
            new PutObjectCommand({
              Bucket,
              Key: state.key,
              Body: new Uint8Array(0),
              ContentType: state.contentType,
            }),
          );
          await send(
            new AbortMultipartUploadCommand({
              Bucket,
              Key: state.key,
              UploadId: state.uploadId,
            }),
          );
        } else {
          await send(
            new CompleteMultipartUploadCommand({
              Bucket,
              Key: state.key,
              UploadId: state.uploadId,
              MultipartUpload: {
                Parts: state.parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })),
              },
            }),
          );
        }
      } catch (error) {
        // Already completed by an earlier attempt that crashed before recording it? S3 says
        // NoSuchUpload; other servers fail differently (moto: a 500), so ask ListParts.
        if (!isNotFound(error) && await uploadMayExist(state)) throw error;
        return completedEarlier(state, await headObject(state.key));
      }
      const head = await headObject(state.key);
      if (!head || head.size !== state.bytes) {
        throw new Error(
          `completed object has ${head?.size ?? "no"} bytes, expected ${state.bytes}: ${state.key}`,
        );
      }
      return head;
    },

    async abortUpload(state: Pick<UploadState, "key" | "uploadId">): Promise<void> {
      if (keyBoundsProblem(state.key)) return; // no upload can exist under such a key
      try {
        await send(
          new AbortMultipartUploadCommand({ Bucket, Key: state.key, UploadId: state.uploadId }),
        );
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
    },

    headObject,

    async deleteObject(key: string): Promise<void> {
      if (keyBoundsProblem(key)) return; // no object can exist under such a key
      try {
        await send(new DeleteObjectCommand({ Bucket, Key: key }));
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
    },

    async downloadUrl(
      key: string,
      urlOptions: { expiresInSeconds: number; filename?: string },
    ): Promise<string> {
      const expiresIn = Math.floor(urlOptions.expiresInSeconds);
      if (!(expiresIn >= 1 && expiresIn <= MAX_PRESIGN_SECONDS)) {
        throw new RangeError(
          `download URL expiry must be between 1 and ${MAX_PRESIGN_SECONDS} seconds: ${urlOptions.expiresInSeconds}`,
        );
      }
      checkKey(key);
      const command = new GetObjectCommand({
        Bucket,
        Key: key,
        ResponseContentDisposition: urlOptions.filename
          ? attachmentDisposition(urlOptions.filename)
          : undefined,
      });
      return await getSignedUrl(client, command, { expiresIn });
    },

    async listObjects(prefix: string): Promise<string[]> {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await send(
          new ListObjectsV2Command({ Bucket, Prefix: prefix, ContinuationToken: token }),
        );
        for (const object of page.Contents ?? []) {
          if (object.Key !== undefined) keys.push(object.Key);
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return keys;
    },

    async listIncompleteUploads(prefix: string): Promise<IncompleteUpload[]> {
      const uploads: IncompleteUpload[] = [];
      let keyMarker: string | undefined;
      let uploadIdMarker: string | undefined;
      do {
        const page = await send(
          new ListMultipartUploadsCommand({
            Bucket,
            Prefix: prefix,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
        );
        for (const upload of page.Uploads ?? []) {
          if (upload.Key === undefined || upload.UploadId === undefined) continue;
          uploads.push({ key: upload.Key, uploadId: upload.UploadId, initiated: upload.Initiated });
        }
        if (page.IsTruncated) {
          keyMarker = page.NextKeyMarker;
          uploadIdMarker = page.NextUploadIdMarker;
        } else {
          keyMarker = undefined;
        }
      } while (keyMarker);
      return uploads;
    },
  };
}

function errorName(error: unknown): string | undefined {
  return error instanceof Error ? error.name : undefined;
}

/** True for the S3 "not found" family: a missing key, upload or bucket, or any 404. */
/** No HTTP answer at all (refused, reset, DNS, timeout) or a 5xx left after the SDK's retries. */
function isUnreachable(error: unknown): boolean {
  const status = (error as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata
    ?.httpStatusCode;
  if (typeof status === "number") return status >= 500;
  return error instanceof Error;
}

function isNotFound(error: unknown): boolean {
  const name = errorName(error);
  if (
    name === "NotFound" || name === "NoSuchKey" || name === "NoSuchUpload" ||
    name === "NoSuchBucket"
  ) {
    return true;
  }
  const status = (error as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata
    ?.httpStatusCode;
  return status === 404;
}

function unquote(etag: string | undefined): string | undefined {
  return etag?.replace(/^"|"$/g, "");
}
