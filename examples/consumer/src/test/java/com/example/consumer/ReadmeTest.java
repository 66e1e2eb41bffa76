package com.example.consumer;

import dev.collie.models.decoder.DecoderCheckpoint;
import dev.collie.models.decoder.DecoderConfig;
import dev.collie.models.decoder.DecoderForCausalLM;
import dev.collie.models.tokenizer.HfTokenizer;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

import javax.tools.Diagnostic;
import javax.tools.DiagnosticCollector;
import javax.tools.JavaCompiler;
import javax.tools.JavaFileObject;
import javax.tools.StandardJavaFileManager;
import javax.tools.ToolProvider;
import java.io.IOException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * README.md taken literally by a project that depends on the installed collie artifacts: its "Maven coordinates"
 * section is this project's pom, every Java snippet in it compiles here as written (free variables declared in an
 * HTML comment before the snippet: {@code <!-- snippet uses: Type name, ... -->}), and the first one trains a tiny model
 * on a small file and saves it.
 */
class ReadmeTest {
    private static final Path README = Path.of(System.getProperty("readme", "../../README.md"));
    private static final Path REPO = README.toAbsolutePath().getParent();
    private static final Pattern JAVA = Pattern.compile(
            "(?:<!-- snippet uses: ([^>]*?) -->\\n)?```java\\n(.*?)```", Pattern.DOTALL);
    /** What every snippet may use without importing it (the README's snippets show no import lines). */
    private static final List<String> IMPORTS = List.of("java.nio.file.Path", "java.util.Map",
            "org.nd4j.linalg.api.buffer.DataType", "org.nd4j.linalg.api.ndarray.INDArray",
            "dev.collie.core.data.Dataset", "dev.collie.core.data.Datasets", "dev.collie.core.dist.Communicator",
            "dev.collie.core.optim.Optimizer", "dev.collie.core.tensor.Backends", "dev.collie.core.train.CollieConfig",
            "dev.collie.core.train.ProgressBar", "dev.collie.core.train.Trainer", "dev.collie.models.decoder.DecoderCheckpoint",
            "dev.collie.models.decoder.DecoderForCausalLM", "dev.collie.models.tokenizer.HfTokenizer",
            "dev.collie.optim.AdamW", "dev.collie.parallel.Parallelism");

    private record Snippet(String uses, String code) {
    }

    private static String readme() throws IOException {
        return Files.readString(README);
    }

    private static String squeeze(String s) {
        return s.replaceAll("\\s+", " ").trim();
    }

    @Test
    void thisPomHoldsTheReadmesMavenSection() throws IOException {
        String r = readme();
        String section = r.substring(r.indexOf("## Maven coordinates"), r.indexOf("## Use it from Java"));
        Matcher m = Pattern.compile("```xml\\n(.*?)```", Pattern.DOTALL).matcher(section);
        assertTrue(m.find(), "README.md: no xml block under \"Maven coordinates\"");
        String pom = Files.readString(Path.of(System.getProperty("pom", "pom.xml")));
        assertTrue(squeeze(pom).contains(squeeze(m.group(1))),
                "pom.xml does not hold README.md's \"Maven coordinates\" block verbatim");
    }

    @Test
    void everyJavaSnippetCompilesAndTheFirstTrainsATinyModel() throws Exception {
        List<Snippet> snippets = new ArrayList<>();
        Matcher m = JAVA.matcher(readme());
        while (m.find()) {
            snippets.add(new Snippet(m.group(1) == null ? "" : m.group(1).trim(), m.group(2)));
        }
        assertTrue(snippets.size() >= 2, "README.md has " + snippets.size() + " Java snippets");
        Path work = Files.createDirectories(Path.of("snippets"));
        Path src = Files.createDirectories(work.resolve("src"));
        Path classes = Files.createDirectories(work.resolve("classes"));
        List<Path> files = new ArrayList<>();
        for (int i = 0; i < snippets.size(); i++) {
            StringBuilder java = new StringBuilder();
            IMPORTS.forEach(imp -> java.append("import ").append(imp).append(";\n"));
            java.append("public class Snippet").append(i).append(" {\n    public static void run(")
                    .append(snippets.get(i).uses()).append(") throws Exception {\n")
                    .append(snippets.get(i).code()).append("    }\n}\n");
            Path f = src.resolve("Snippet" + i + ".java");
            Files.writeString(f, java);
            files.add(f);
        }
        compile(files, classes);

        // the first snippet reads my-llama/ (model and tokenizer) and train.jsonl from the working directory
        prepareTinyModel(Path.of("my-llama"));
        writeRows(Path.of("train.jsonl"), 48);
        try (URLClassLoader loader = new URLClassLoader(new URL[] {classes.toUri().toURL()}, getClass().getClassLoader())) {
            loader.loadClass("Snippet0").getMethod("run").invoke(null);
        }
        Path tuned = Path.of("my-llama-tuned");
        assertTrue(Files.isRegularFile(tuned.resolve("config.json")), tuned + "/config.json");
        assertTrue(Files.isRegularFile(tuned.resolve("model.safetensors")), tuned + "/model.safetensors");
        DecoderForCausalLM back = DecoderCheckpoint.load(tuned, DataType.FLOAT);
        assertEquals(DecoderCheckpoint.load(Path.of("my-llama"), DataType.FLOAT).namedParameters().keySet(),
                back.namedParameters().keySet());
        System.out.println("README snippets compiled: " + snippets.size() + "; the first trained and saved " + tuned);
    }

    private static void compile(List<Path> files, Path classes) throws IOException {
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        DiagnosticCollector<JavaFileObject> diagnostics = new DiagnosticCollector<>();
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        try (StandardJavaFileManager fm = javac.getStandardFileManager(diagnostics, null, null)) {
            boolean ok = javac.getTask(null, fm, diagnostics, List.of("-classpath", cp, "-d", classes.toString()),
                    null, fm.getJavaFileObjectsFromPaths(files)).call();
            StringBuilder errors = new StringBuilder();
            for (Diagnostic<? extends JavaFileObject> d : diagnostics.getDiagnostics()) {
                errors.append('\n').append(d);
            }
            assertTrue(ok, "README.md's Java snippets do not compile against the collie artifacts:" + errors);
        }
    }

    /** A two-layer LLaMA over the repository's committed tokenizer, saved as a Hugging Face directory. */
    private static void prepareTinyModel(Path dir) throws IOException {
        Files.createDirectories(dir);
        Path tokDir = REPO.resolve("examples/data/tokenizer");
        try (var files = Files.list(tokDir)) {
            for (Path f : files.toList()) {
                Files.copy(f, dir.resolve(f.getFileName()), StandardCopyOption.REPLACE_EXISTING);
            }
        }
        int vocab;
        try (HfTokenizer tok = HfTokenizer.load(dir)) {
            vocab = tok.vocabSize();
        }
        DecoderConfig cfg = DecoderConfig.builder().vocabSize(vocab).hiddenSize(32).intermediateSize(64)
                .numHiddenLayers(2).numAttentionHeads(4).numKeyValueHeads(4).maxPositionEmbeddings(512).build();
        DecoderCheckpoint.save(new DecoderForCausalLM(cfg, DataType.FLOAT), dir);
    }

    private static void writeRows(Path file, int rows) throws IOException {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < rows; i++) {
            s.append("{\"text\": \"Call me Ishmael. Some years ago, never mind how long precisely, line ").append(i)
                    .append(".\"}\n");
        }
        Files.writeString(file, s);
    }
}
