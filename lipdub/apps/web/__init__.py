"""lipdub/apps/web"""
