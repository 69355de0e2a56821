"""`syncwatch demo` runs the scripted session offline and prints a readable conversation."""

from __future__ import annotations

import io

import pytest

from bot.demo import run_demo


@pytest.mark.slow  # the demo as users run it: real one-second polls within vendor budgets
def test_demo_prints_the_channel_and_threads_and_succeeds():
    out = io.StringIO()
    assert run_demo(fast=True, out=out, timeout=60) == 0
    text = out.getvalue()
    assert "alice types: /syncwatch watch za" in text
    assert "(only carol sees this)" in text and "Did you mean `zoho-analytics`?" in text
    assert "✅ @alice Job succeeded" in text
    assert "❌ @bob Job failed" in text and "expected a number but found 'twelve'" in text
    # The channel broadcasts failures (docs/architecture.md#channel-settings): each failed
    # or partial job's reply is also sent to the channel, and nothing else is.
    assert "turns on “Broadcast failures” for #revops-imports" in text
    assert text.count("also sent to #revops-imports") == 5  # bob, erin, frank, gina, hank
    assert "📎 import-summary-2480011000000512007.csv" in text
    assert "✅ @dana Job succeeded" in text and "📎 Invoices.csv" in text
    assert "📎 Payments.csv" in text and "INV-00017,1200.00,Posted" in text
    assert "❌ @erin Job failed" in text and "90029" in text
    transcript = text.split("as it reads now", 1)[1]
    assert (
        "@frank Job completed with problems" in text and "micro-import-imp_8QmZ2vK4tR.csv" in text
    )
    assert "@gina Job completed with problems" in text and "MANDATORY_NOT_FOUND ×5" in text
    assert "hank types: /syncwatch sync" in text and "@hank Sync completed with problems" in text
    # A nightly schedule that stays quiet unless a run fails (docs/architecture.md#alert-policy).
    assert "posts failed runs only: a run that goes well posts nothing here" in text
    assert transcript.count("Asked by @") == 7  # one parent per watch, nothing doubled
    # A script announces its job with a token, and Zuora's callback reaches the watch.
    assert "alice types: /syncwatch token create nightly-etl" in text and "`swt_" in text
    assert "→ 201 watch w" in text and "→ 202 polling" in text
    assert transcript.count("Started by nightly-etl") == 1
