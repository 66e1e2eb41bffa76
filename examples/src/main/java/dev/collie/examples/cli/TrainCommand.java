package dev.collie.examples.cli;

import picocli.CommandLine.Command;

import java.util.concurrent.Callable;

@Command(name = "train", mixinStandardHelpOptions = true, description = "Train a model.")
final class TrainCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        return 0;
    }
}
