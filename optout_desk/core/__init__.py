"""Pure domain: identifiers, records, reconciliation, plans. Imports nothing of the project's
outer layers and nothing of Qt, httpx, sqlite or openpyxl."""
