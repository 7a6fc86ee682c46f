using Lifeline.Cli;

return await LifelineCli.RunAsync(args, CliConsole.FromProcess()).ConfigureAwait(false);
