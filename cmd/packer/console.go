package main

func runConsole(e *env, args []string) int { return 1 }
