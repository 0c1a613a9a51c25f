"""Local HTTP stand-ins of the vendors' APIs (OpenAI, Pinecone, ElevenLabs)."""
