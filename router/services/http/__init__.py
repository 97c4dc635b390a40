"""The OpenAI-compatible HTTP door: OpenAI's JSON in, the request pipeline (router.pipeline), OpenAI's JSON out."""
