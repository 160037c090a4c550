// The WHATWG encoding API is available on every runtime jobledger targets; core declares the
// little it uses instead of pulling in Node's or the DOM's types (core does no I/O).
declare class TextEncoder {
  encode(input?: string): Uint8Array;
}
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean });
  decode(input?: Uint8Array): string;
}
