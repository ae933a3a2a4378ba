package main

func runHCL2Upgrade(e *env, args []string) int { return 1 }
