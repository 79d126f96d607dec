/** Object storage for exports: the S3 or filesystem backend, as the configuration says. */
import type { Config } from "../config/mod.ts";
import { createFsStorage } from "./fs.ts";
import { createS3Storage } from "./s3.ts";
import type { ObjectStorage } from "./types.ts";

export type { IncompleteUpload, ObjectStorage, UploadedPart, UploadState } from "./types.ts";
export {
  InvalidKeyError,
  KeyOutOfBoundsError,
  StorageUnavailableError,
  UploadNotFoundError,
} from "./errors.ts";
export { attachmentDisposition } from "./disposition.ts";
export {
  createFsStorage,
  type FsStorageOptions,
  resolveFilePath,
  verifyFileSignature,
} from "./fs.ts";
export { createS3Client, createS3Storage, type S3StorageOptions } from "./s3.ts";

/** The backend `config.storageBackend` names, configured from `config`. */
export function createStorage(config: Config): ObjectStorage {
  switch (config.storageBackend) {
    case "s3":
      return createS3Storage(config.s3);
    case "fs":
      return createFsStorage({
        dir: config.exportsDir,
        publicBaseUrl: config.publicBaseUrl,
        signingSecret: config.signingSecret,
      });
  }
}
