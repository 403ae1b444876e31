"""Connectors: contract events from the tools contact centers already run.

Asterisk ``queue_log`` files (``convert``, and ``tail`` for the live file), and webhooks
from Zendesk, Amazon Connect, Twilio TaskRouter, Chatwoot and Delighted (``gateway``, and
``convert`` for backfills). Every path writes the same contract events for the same
input, so a backfill and the live feed can overlap without counting twice.
See docs/connectors.md.
"""
