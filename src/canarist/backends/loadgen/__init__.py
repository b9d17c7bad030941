"""Load generators: HTTP (`http`) and gRPC, sharing `recorder.Recorder` and `LoadResult`."""
