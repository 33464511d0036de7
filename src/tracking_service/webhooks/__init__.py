"""Webhooks: signing and retry schedule (pure), URL guard, fan-out, dispatcher, sender."""
