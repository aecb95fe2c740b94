// Docker Engine API errors: a status code and `{"message": ...}`, the shape every
// docker client prints as "Error response from daemon: <message>".

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const badRequest = (message: string): ApiError => new ApiError(400, message);
export const notFound = (message: string): ApiError => new ApiError(404, message);
export const conflict = (message: string): ApiError => new ApiError(409, message);
export const serverError = (message: string): ApiError => new ApiError(500, message);
export const unavailable = (message: string): ApiError => new ApiError(503, message);

export function noSuchContainer(ref: string): ApiError {
  return notFound(`No such container: ${ref}`);
}

export function noSuchImage(ref: string): ApiError {
  return notFound(`No such image: ${ref}`);
}

/** Any thrown value as an ApiError: ours keep their status, anything else is a 500. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof Error) return serverError(err.message);
  return serverError(String(err));
}
