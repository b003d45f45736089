"""The gRPC layer: it translates between xai.v1 messages and jobs, and nothing more."""
