"""reconcilers"""
