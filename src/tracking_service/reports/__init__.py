"""The promise report: the ledger of registered orders' promises and what became of them
(`ledger`, the database edge), its figures (`figures`, pure), its charts (`svg`, pure) and the
page that shows them (`page`)."""
