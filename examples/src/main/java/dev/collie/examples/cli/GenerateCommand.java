package dev.collie.examples.cli;

import picocli.CommandLine.Command;

import java.util.concurrent.Callable;

@Command(name = "generate", mixinStandardHelpOptions = true, description = "Generate text.")
final class GenerateCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        return 0;
    }
}
