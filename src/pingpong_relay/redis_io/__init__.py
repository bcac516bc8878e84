"""redis_io"""
