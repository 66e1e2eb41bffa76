package dev.collie.examples.cli;

import picocli.CommandLine.Command;

import java.util.concurrent.Callable;

@Command(name = "score", mixinStandardHelpOptions = true, description = "Score text.")
final class ScoreCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        return 0;
    }
}
