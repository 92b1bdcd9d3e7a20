"""Provenance anyone can check: a signed C2PA manifest in every output, and `farm verify`.

keys: the signing credentials (configured, or a self-signed pair made once under FARM_HOME);
manifest: what the manifest says about a job; sign: signing a finalized output;
check: reading and validating a file's manifest.
"""
