// Something for the agent to work on.
console.log('hello from the demo workspace');
