"""Real local stand-ins used by the demo and the tests: an OpenAI-compatible model server
and an OTLP/gRPC receiver. Not imported by the plugin itself."""
