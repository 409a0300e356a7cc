/** An error the REST API answers with its status code and `{ errors: [message] }`, as Flink does. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}
