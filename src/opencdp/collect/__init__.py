"""Real-time collection: webhooks and the tracking API, their verification, queue and batcher."""
