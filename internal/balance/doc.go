// Package balance decides how many WebSocket clients an instance hands
// back to the load balancer so that the instances of a deployment hold
// about the same number: after a rolling restart the instance that came
// back last starts empty, and without help it stays so until clients
// reconnect of their own accord. An instance well above the average, while
// another is well below it, closes a small share of its clients with 1012
// ("reconnect elsewhere") each round; they resume on any instance with
// ?since= and miss nothing (the sync stream). Rounds are small and spaced
// so that shedding never becomes a reconnect storm of its own.
package balance
