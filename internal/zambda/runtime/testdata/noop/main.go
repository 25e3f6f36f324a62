// Command noop exits at once: the floor for starting a static Go binary.
package main

func main() {}
