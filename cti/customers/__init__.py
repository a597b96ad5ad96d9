"""cti.customers"""
