// The gRPC transport: import from here.
export { GrpcTransport } from './grpc.js';
export type { GrpcTransportOptions, TransportCredentials } from './grpc.js';
export { decodeMessage, encodeMessage, FrameReader, packFrames } from './codec.js';
