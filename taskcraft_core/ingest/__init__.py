"""Ingestion: files, URLs and archives into documents and chunks with exact offsets."""
