/**
 * salt-api's error answers: an HTTP status with a message, sent as CherryPy's XHTML error page
 * (`text/html` whatever the Accept header, as salt-api does), except an unexpected exception,
 * which is `{"status": 500, "return": "An unexpected error occurred"}` in the negotiated format.
 */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  readonly retryable: boolean;

  constructor(
    readonly status: number,
    message?: string,
    options?: { cause?: unknown; retryable?: boolean },
  ) {
    super(message ?? DEFAULT_MESSAGES[status] ?? STATUS_TEXT[status] ?? 'Error', options);
    this.retryable = options?.retryable ?? status >= 500;
  }
}

export const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** CherryPy's texts when no message is given. */
const DEFAULT_MESSAGES: Record<number, string> = {
  401: 'No permission -- see authorization schemes',
  404: 'Nothing matches the given URI',
  500: 'The server encountered an unexpected condition which prevented it from fulfilling the request.',
};

/** Salt's messages, word for word. */
export const ApiTexts = {
  loginFailed: 'Could not authenticate using provided credentials',
  noCredentials: 'No authentication credentials given',
  invalidToken: 'Invalid token',
  lowstateList: 'Lowstates must be a list',
  invalidJson: 'Invalid JSON document',
  invalidYaml: 'Invalid YAML document',
  contentType: 'Content type not supported',
  unexpected: 'An unexpected error occurred',
  checkSyntax: 'A command invocation error occurred: Check syntax.',
  masterDown: 'Salt Master is not available.',
  invalidClient: (client: unknown) => `Invalid client specified: '${String(client)}'`,
  notAcceptable: (accept: string) =>
    `Your client sent this Accept header: ${accept}. But this resource only emits these media types: application/json, application/x-yaml.`,
  eventsQuery:
    'The /events endpoint takes no query parameters other than token; send the token in the X-Auth-Token header or the session cookie instead',
} as const;

const escapeHtml = (s: string) => s.replace(/[&<>]/g, (c) => `&#${c.charCodeAt(0)};`);

/** The error page's body. */
export function errorPage(status: number, message: string): string {
  const title = `${status} ${STATUS_TEXT[status] ?? ''}`.trim();
  return `<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html>
<head>
    <meta http-equiv="Content-Type" content="text/html; charset=utf-8"></meta>
    <title>${title}</title>
</head>
    <body>
        <h2>${title}</h2>
        <p>${escapeHtml(message)}</p>
        <pre id="traceback"></pre>
    <div id="powered_by">
      <span>
        Powered by jobledger
      </span>
    </div>
    </body>
</html>
`;
}
