import { createRequire } from 'node:module';

/**
 * The generated protobuf messages and gRPC service definitions that ship inside @eventstore/db-client
 * (the package ships no .proto files). Loaded with require so the server and the client share the very
 * same module instances (the generated serializers check `instanceof`).
 */
const require = createRequire(import.meta.url);

export const streamsPb =
  require('@eventstore/db-client/generated/streams_pb.js') as typeof import('@eventstore/db-client/generated/streams_pb.js');
export const sharedPb =
  require('@eventstore/db-client/generated/shared_pb.js') as typeof import('@eventstore/db-client/generated/shared_pb.js');
export const streamsGrpc =
  require('@eventstore/db-client/generated/streams_grpc_pb.js') as typeof import('@eventstore/db-client/generated/streams_grpc_pb.js');
