package dev.collie.serve;

import com.fasterxml.jackson.databind.JsonNode;
import dev.collie.models.tokenizer.HfTokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.openqa.selenium.By;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.TakesScreenshot;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.support.ui.ExpectedConditions;
import org.openqa.selenium.support.ui.WebDriverWait;

import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static dev.collie.serve.TinyModel.JSON;
import static dev.collie.serve.TinyModel.json;
import static dev.collie.serve.TinyModel.post;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The chat page at {@code /} in headless Chromium (Debian's {@code chromium} and {@code chromium-driver}; skipped
 * without them): its streamed answers are the API's, it sends the key, its stop button frees the row, it shows errors.
 * The server's model waits 20 ms a token, so the stream is seen in pieces.
 */
@Timeout(90)
class ChatPageBrowserTest {
    static final Path CHROMIUM = Path.of("/usr/bin/chromium");
    static final Path CHROMEDRIVER = Path.of("/usr/bin/chromedriver");
    static final String KEY = "sk-page-key";
    static final int CONTEXT = 192;
    static HfTokenizer tok;
    static OpenAiServer server;
    static WebDriver driver;
    static WebDriverWait wait;
    /** Held: Selenium's note that it has no DevTools bindings for this Chromium (none are used) is not shown. */
    static final java.util.logging.Logger CDP_LOG = java.util.logging.Logger.getLogger("org.openqa.selenium.devtools");

    static final boolean BROWSER = Files.isExecutable(CHROMIUM) && Files.isExecutable(CHROMEDRIVER);

    @BeforeAll
    static void start() {
        if (!BROWSER) {
            return;
        }
        tok = HfTokenizer.load(TinyModel.CHAT_TOKENIZER);
        server = OpenAiServer.builder(TinyModel.slow(TinyModel.model(tok, CONTEXT), 20), tok).modelName("tiny")
                .contextLength(CONTEXT).eosIds(tok.eosId().orElseThrow()).port(0).apiKey(KEY).build().start();
        CDP_LOG.setLevel(java.util.logging.Level.SEVERE);
        // the driver and browser named: Selenium Manager (which would download them) never runs
        ChromeDriverService service = new ChromeDriverService.Builder()
                .usingDriverExecutable(CHROMEDRIVER.toFile()).usingAnyFreePort().build();
        ChromeOptions options = new ChromeOptions().setBinary(CHROMIUM.toFile())
                .addArguments("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800");
        driver = new ChromeDriver(service, options);
        wait = new WebDriverWait(driver, Duration.ofSeconds(20), Duration.ofMillis(20));
    }

    /** Each test, not the class, is skipped: Surefire counts and reports these. */
    @BeforeEach
    void needsTheBrowser() {
        assumeTrue(BROWSER, "needs /usr/bin/chromium and /usr/bin/chromedriver: apt-get install chromium"
                + " chromium-driver");
    }

    @AfterAll
    static void stop() {
        if (driver != null) {
            driver.quit();
        }
        if (server != null) {
            server.close();
            tok.close();
        }
    }

    private static WebElement byId(String id) {
        return driver.findElement(By.id(id));
    }

    private static void type(String id, String text) {
        byId(id).clear();
        byId(id).sendKeys(text);
    }

    private static String js(String script, Object... args) {
        return String.valueOf(((JavascriptExecutor) driver).executeScript(script, args));
    }

    /** Opens the page and waits for the model's name (typing the key where the page asks for it). */
    private static void open() {
        driver.get(TinyModel.base(server) + "/");
        wait.until(d -> !byId("model-name").getText().equals("…"));
        if (!byId("model-name").getText().equals("tiny")) {
            assertTrue(byId("key-row").isDisplayed(), "the page asks for the key");
            type("api-key", KEY);
            byId("prompt").click();     // leaving the field sends its change event
        }
        wait.until(ExpectedConditions.textToBe(By.id("model-name"), "tiny"));
    }

    /** Sends {@code prompt} and returns every text the last answer showed while it streamed, then its final text. */
    private static List<String> sendAndWatch(String prompt) throws InterruptedException {
        int before = driver.findElements(By.cssSelector(".msg.assistant")).size();
        type("prompt", prompt);
        byId("send").click();
        wait.until(d -> d.findElements(By.cssSelector(".msg.assistant")).size() > before);
        Set<String> seen = new LinkedHashSet<>();
        long deadline = System.nanoTime() + 20_000_000_000L;
        String state;
        do {
            Thread.sleep(10);
            state = js("const m = [...document.querySelectorAll('.msg.assistant')].pop();"
                    + " return m.dataset.state + '\\n' + m.querySelector('.text').textContent;");
            seen.add(state);
        } while (state.startsWith("streaming") && System.nanoTime() < deadline);
        List<String> texts = new ArrayList<>();
        for (String s : seen) {
            texts.add(s.substring(s.indexOf('\n') + 1));
        }
        assertTrue(state.startsWith("done\n"), "the answer ends: " + state);
        return texts;
    }

    private static String apiAnswer(List<Map<String, String>> messages) throws Exception {
        HttpResponse<String> r = post(server, "/v1/chat/completions", KEY, JSON.writeValueAsString(Map.of(
                "messages", messages, "temperature", 0.9, "top_p", 0.95, "max_tokens", 20, "seed", 7)));
        assertEquals(200, r.statusCode(), r.body());
        JsonNode body = json(r.body());
        return body.at("/choices/0/message/content").asText();
    }

    @Test
    void streamedAnswersAreTheApisForTheSameConversation() throws Exception {
        open();
        type("system", "Be brief.");
        type("temperature", "0.9");
        type("top-p", "0.95");
        type("max-tokens", "20");
        type("seed", "7");
        List<String> first = sendAndWatch("Hi there");
        String answer = first.get(first.size() - 1);
        assertTrue(first.stream().filter(t -> !t.isEmpty() && !t.equals(answer)).count() >= 2,
                "the text grew in pieces: " + first);
        Map<String, String> system = Map.of("role", "system", "content", "Be brief.");
        Map<String, String> user = Map.of("role", "user", "content", "Hi there");
        assertEquals(apiAnswer(List.of(system, user)), answer);
        // the second turn carries the first
        List<String> second = sendAndWatch("Tell me more.");
        assertEquals(apiAnswer(List.of(system, user, Map.of("role", "assistant", "content", answer),
                Map.of("role", "user", "content", "Tell me more."))), second.get(second.size() - 1));
        assertEquals(4, driver.findElements(By.cssSelector("#messages .msg")).size());
        Path shot = Path.of("target", "serve-chat.png");
        Files.createDirectories(shot.getParent());
        Files.copy(((TakesScreenshot) driver).getScreenshotAs(OutputType.FILE).toPath(), shot,
                StandardCopyOption.REPLACE_EXISTING);
    }

    @Test
    void stopFreesTheRowAndAnErrorIsShown() throws Exception {
        open();
        type("temperature", "0");
        type("max-tokens", "120");
        type("prompt", "Go on for a while");
        byId("send").click();
        wait.until(d -> !js("const m = [...document.querySelectorAll('.msg.assistant')].pop();"
                + " return m ? m.querySelector('.text').textContent : '';").isEmpty());
        byId("stop").click();
        wait.until(d -> js("return [...document.querySelectorAll('.msg.assistant')].pop().dataset.state;")
                .equals("stopped"));
        long stopped = System.nanoTime();
        while (server.engine().pending() > 0 && System.nanoTime() - stopped < 3_000_000_000L) {
            Thread.sleep(10);
        }
        assertEquals(0, server.engine().pending(), "the stopped row left the queue (120 tokens take 2.4 s)");
        // prompt + max_tokens beyond the context: the server's 400 is shown, the prompt given back
        type("max-tokens", "1000");
        type("prompt", "Too long");
        byId("send").click();
        wait.until(ExpectedConditions.visibilityOfElementLocated(By.id("error")));
        assertTrue(byId("error").getText().startsWith("400: This model's maximum context length is " + CONTEXT),
                byId("error").getText());
        assertEquals("Too long", byId("prompt").getAttribute("value"));
        assertTrue(byId("send").isEnabled() && !byId("stop").isEnabled());
    }
}
